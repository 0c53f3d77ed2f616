// What the OpenWhisk end-to-end tests share.

/** An error of the openwhisk client: the HTTP status and the answer's body. */
export type OwError<B = Record<string, unknown>> = Error & { statusCode?: number; error?: B };

/** The rejection of a promise that must fail. */
export async function failure<B = Record<string, unknown>>(p: Promise<unknown>): Promise<OwError<B>> {
  try {
    await p;
  } catch (err) {
    return err as OwError<B>;
  }
  throw new Error('expected the call to fail');
}
