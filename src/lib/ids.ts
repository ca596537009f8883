import { TypeID, typeid } from "typeid-js";

/** Every id prefix Orgplane mints. One generator, typed prefixes: `newId("org")` → `org_01h…`. */
export type IdPrefix =
  | "org"
  | "int"
  | "key"
  | "opk"
  | "aud"
  | "req"
  | "usr"
  | "prj"
  | "inv"
  | "msg"
  | "pln"
  | "sub";

export function newId(prefix: IdPrefix): string {
  return typeid(prefix).toString();
}

/**
 * True when `value` is a well-formed TypeID with the given prefix. Used to turn ids of the wrong
 * shape into a 404 before any database read.
 */
export function isId(prefix: IdPrefix, value: string): boolean {
  // A TypeID is the prefix, "_", and 26 base32 characters; anything longer cannot be one.
  if (value.length !== prefix.length + 27 || !value.startsWith(`${prefix}_`)) {
    return false;
  }
  try {
    return TypeID.fromString(value).getType() === prefix;
  } catch {
    return false;
  }
}
