/* What the stage driver (stage_gen.c) needs of the stage (stage.c) and no stage should: how
 * many records sq_stage_keep and sq_stage_drop have been given, successfully or not. The
 * driver compares it around `build` to know whether build handed the record to one of them
 * (then the record is gone, whatever they returned) or still holds it (stage.h, Ownership). */
#ifndef SCALEQUEST_STAGE_INTERNAL_H
#define SCALEQUEST_STAGE_INTERNAL_H

#include "scalequest/stage.h"

int64_t sq_stage_taken(const sq_stage *st);

#endif
