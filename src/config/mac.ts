// Apart from fields.ts so the run path (src/wake/wake.ts) checks a MAC without loading zod.

/** Six hex pairs with one consistent separator, ":" or "-". */
export const MAC = /^([0-9A-Fa-f]{2})([:-])[0-9A-Fa-f]{2}(\2[0-9A-Fa-f]{2}){4}$/;
