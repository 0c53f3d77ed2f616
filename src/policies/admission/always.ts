import type { AdmissionDecision, AdmissionPolicy } from '../types.js';
import { ADMIT } from './decisions.js';

/** Admit everything; only the queueing deadline refuses (for experiments that want the raw queueing behaviour). */
export class AlwaysAdmission implements AdmissionPolicy {
  readonly name = 'always';
  admit(): AdmissionDecision {
    return ADMIT;
  }
}
