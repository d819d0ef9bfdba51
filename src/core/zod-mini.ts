/**
 * zod's functional build (`zod/mini`) with zod's English messages, for the schemas read on the
 * start-up path of short commands (issue 14 C18); import it as
 * `import * as z from "../core/zod-mini.js"`. A `zod/mini` schema is built without the dozens of
 * methods `zod` (classic) attaches to every schema object, ~3× less CPU for the same schema, and it
 * checks and reports exactly as the classic one (both run zod's core checks). `zod/mini` sets no
 * messages of its own: English ones are set here, unless the host already configured a locale
 * (importing classic `zod` configures English too).
 */
import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

if (!config().localeError) config(en());

// Named re-exports (not a namespace object), so that the bundler keeps only what is used.
export * from "zod/mini";
