/**
 * The root of every error kmslab throws on purpose. Each layer defines its own failure kinds
 * (one class each) on top of this, so callers can tell "bad bytes" from "bad config" from
 * "host refused" with `instanceof`, and every such error carries the field or offset at fault.
 */
export class KmslabError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}

/** A command line or API argument that cannot be used: the CLI maps it to exit code 64. */
export class UsageError extends KmslabError {
  constructor(
    message: string,
    readonly option?: string,
  ) {
    super(message)
  }
}

/** Configuration or persistent state that cannot be used (unwritable or corrupt state, ...): exit 78. */
export class ConfigError extends KmslabError {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message)
  }
}
