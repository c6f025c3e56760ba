// JSON's structural characters as code units, for the scanners that walk JSON text without parsing
// it (the webhook's depth guard over a string, the Kopia manifest parser over UTF-8 bytes): all are
// ASCII, so a UTF-16 code unit and a UTF-8 byte have the same value.

/** `"`: starts and ends a string. */
export const QUOTE = 0x22
/** `\`: escapes the next character inside a string. */
export const BACKSLASH = 0x5c
/** `,` between members and elements. */
export const COMMA = 0x2c
/** `:` between a member's name and value. */
export const COLON = 0x3a
/** `{` */
export const OPEN_OBJECT = 0x7b
/** `}` */
export const CLOSE_OBJECT = 0x7d
/** `[` */
export const OPEN_ARRAY = 0x5b
/** `]` */
export const CLOSE_ARRAY = 0x5d
