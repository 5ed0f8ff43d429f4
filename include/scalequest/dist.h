/* dist — data-parallel training across processes with MPI (`mpirun -np N scalequest train`).
 *
 * Every rank holds the whole model and the same data plan; each optimiser step's
 * micro-batches are dealt out round-robin (micro-batch k of the step to rank k mod N), each
 * rank accumulates the gradients of its own, and sq_dist_sum_floats adds the ranks' buffers
 * in rank order (rank 0 receives and adds ranks 1..N-1 in turn, then broadcasts), so the
 * result does not depend on timing: a run is repeatable for a given N and equals the
 * single-process run up to float rounding of the summation order. Every rank then takes the
 * same AdamW step; only rank 0 writes logs and checkpoints.
 *
 * MPI is optional: the glue is compiled only where Open MPI's development files are found
 * (the Makefile asks pkg-config for ompi-c and defines SQ_HAVE_MPI). MPI is initialised only
 * when the process was started by mpirun (its environment says so), so the same binary runs
 * alone without it; a build without MPI started by mpirun with N > 1 refuses to run rather
 * than have N processes each train alone. The state (rank, size) is process-wide, as MPI's.
 */
#ifndef SCALEQUEST_DIST_H
#define SCALEQUEST_DIST_H

#include <stddef.h>

#include "scalequest/base.h"

/* Start MPI when launched by mpirun (else rank 0 of 1). When several ranks share a machine
 * and --threads was not given, each gets cores / local ranks threads. */
int sq_dist_begin(sq_err *e);
/* Finish: MPI_Finalize after success; after a failure MPI_Abort, so no rank waits forever
 * for one that stopped. */
void sq_dist_end(int failed);
int sq_dist_rank(void);
int sq_dist_size(void);
/* 1 when this build has MPI. */
int sq_dist_available(void);
/* Sum buf[n] over all ranks in rank order; every rank gets the sum. */
int sq_dist_sum_floats(float *buf, size_t n, sq_err *e);
int sq_dist_sum_doubles(double *buf, size_t n, sq_err *e);

#endif
