// Which characters OrthID refuses in text it is given: shared by the admin API's schemas and the
// OIDC parameter check, so both edges refuse the same input.

/**
 * C0 controls other than tab, line feed and carriage return, and DEL, as a character-class body.
 * NUL is the one PostgreSQL cannot store (in text or jsonb); the others belong to no name, id or
 * protocol value. Tab and line breaks stay allowed: descriptions and JSON parameters may hold them.
 */
export const CONTROL_CHARACTER_RANGES = '\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f';

/** Matches a string holding any of them. */
export const CONTROL_CHARACTER = new RegExp(`[${CONTROL_CHARACTER_RANGES}]`, 'u');

/** A JSON-schema `pattern` that text without them matches. */
export const NO_CONTROL_CHARACTERS = `^[^${CONTROL_CHARACTER_RANGES}]*$`;
