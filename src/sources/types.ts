// Sources: where invocations come from (the HTTP API, a trace replayed in
// process, a message broker). Each has a lifecycle the daemon drives: started
// after the actors are up, stopped first at shutdown (no new work is accepted
// while what was accepted is still answered).

export interface Source {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting; work already accepted is still answered by its Sink. */
  stop(): Promise<void>;
}
