/* Private to src/train: the resumable side of a run (checkpoint folder and step log). */
#ifndef SQ_TRAIN_STATE_H
#define SQ_TRAIN_STATE_H

#include <stdio.h>

#include "scalequest/train.h"

/* What shapes a run, as a JSON object (malloc'd text): every option that changes its steps,
 * the plan's length, and hashes of the examples and of the starting weights (call it before
 * a resume overwrites them). Each checkpoint carries it, and a checkpoint is resumed only by
 * a run whose identity is the same, so a resumed run is the uninterrupted run it claims to
 * continue. NULL when out of memory. */
char *sq_train_run_identity(const sq_tmodel *m, const sq_texample *ex, int n, const sq_train_opts *o,
                            int64_t steps);

/* 1 and *start when out_dir/last-checkpoint was loaded into m, opt (and ref when non-NULL);
 * 0 when there is none; < 0 on error: a checkpoint of another run (its identity differs) is
 * refused with every difference named by its option. */
int sq_train_state_resume(sq_tmodel *m, sq_adamw *opt, float *ref, int n, const sq_train_opts *o,
                          const char *identity, int64_t *start, sq_err *e);
/* Write out_dir/last-checkpoint as of `step`, replacing the previous one only once the new
 * one is complete. */
int sq_train_state_save(const sq_tmodel *m, const sq_adamw *opt, const float *ref, int n, const sq_train_opts *o,
                        const char *identity, int64_t step, sq_err *e);

typedef struct train_log {
    FILE *fp;
} train_log;

/* Open out_dir/train_log.jsonl for appending, first dropping lines after step `start` (a
 * killed run logged steps its checkpoint does not hold). out_dir NULL: no log. */
int sq_train_log_open(train_log *l, const char *out_dir, int64_t start, sq_err *e);
int sq_train_log_step(train_log *l, int64_t step, double loss, double lr, double gnorm, double chosen, double rejected,
                      sq_err *e);
void sq_train_log_close(train_log *l);

#endif
