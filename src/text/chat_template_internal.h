/* Shared between the chat template files; not a public interface. */
#ifndef SQ_CHAT_TEMPLATE_INTERNAL_H
#define SQ_CHAT_TEMPLATE_INTERNAL_H

#include "scalequest/chat_template.h"

/* A template of the given family; NULL bos/eos take the family's usual texts. */
int sq_chat_template_make(sq_chat_template **out, sq_chat_family family, const char *bos, const char *eos,
                          const char *default_system, sq_err *e);

#endif
