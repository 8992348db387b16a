/* migctl_args.h — turns migctl's command-line words into a QMP "arguments"
 * object: either one JSON object, or key=value words where values are typed
 * by how they parse and dotted keys build nested objects.
 * Pure functions: any thread; the words are the user's, checked anyway. */
#ifndef MIGD_CONTRIB_MIGCTL_ARGS_H
#define MIGD_CONTRIB_MIGCTL_ARGS_H

#include <jansson.h>

#include "util/error.h"

/* Types one value: a JSON text (number, true, false, null, "string", array,
 * object) becomes that value, anything else a string ("" for empty). A
 * number JSON cannot hold (too large) is an error rather than a string.
 * Returns a new reference or NULL with *errp set. */
json_t *mctl_value_parse(const char *text, struct mig_error **errp);

/* Builds the arguments object from words: none gives {}, one word starting
 * with '{' is parsed as a JSON object, otherwise every word is KEY=VALUE
 * with KEY = NAME[.NAME...]. Returns a new object or NULL with *errp set. */
json_t *mctl_args_parse(int argc, char *const argv[], struct mig_error **errp);

#endif
