/* decontam — drop training questions that overlap the evaluation sets, a stage (stage.h).
 *
 * The benchmark questions (GSM8K test, MATH test, MATH500, College Math, OlympiadBench, and
 * Minerva on request) are read from a folder of their JSONL files and indexed three ways on
 * their normal form (minhash.h): the whole normal form (exact), every word n-gram (13 by
 * default, as the usual decontamination reports use; lower it for short problems), and a
 * MinHash LSH index (the dedup test). A training record is dropped at the first test it
 * fails, with "drop_reason" and "contaminated_by": {"benchmark", "index" (0-based line of
 * the benchmark file), "test": "exact" | "ngram" | "near duplicate"}. Questions shorter
 * than n words are caught only by the exact and near-duplicate tests.
 *
 * The marker: a complete run writes a report beside the output, OUT + ".decontam.json"
 * (atomically, only once every input record is settled): {"decontaminated": true, the
 * output's name and record count, the tests' settings, each benchmark's file and size and how
 * many records it caused to be dropped, with examples}. The runner and `eval` take a
 * training file as decontaminated when this file exists beside it, names it and holds as
 * many records as it has (sq_decontam_check); `export`, and every stage of the stage
 * framework when it closes (stage.h), carry it over to their output (sq_decontam_carry), so
 * the files after decontaminate in the runner's chain keep it. Counts are over the whole
 * output (earlier runs included).
 */
#ifndef SCALEQUEST_DECONTAM_H
#define SCALEQUEST_DECONTAM_H

#include "scalequest/minhash.h"
#include "scalequest/stage.h"

typedef struct sq_decontam_opts {
    sq_stage_opts stage;    /* name "decontaminate" */
    const char *field;      /* question field (default "query") */
    const char *bench_dir;  /* folder of the benchmark files */
    const char *benchmarks; /* comma list (default "gsm8k,math,math500,college_math,olympiadbench") */
    int ngram;              /* default 13; 0: no n-gram test */
    int near;               /* the MinHash test (default on) */
    sq_minhash_params mh;   /* for the near test (dedup's defaults) */
    const char *report;     /* NULL: OUT + ".decontam.json" */
    int examples;           /* per benchmark in the report (default 3) */
} sq_decontam_opts;

void sq_decontam_opts_default(sq_decontam_opts *o);
/* The known benchmarks, comma-separated (for help). */
const char *sq_decontam_known(void);
int sq_decontam_run(const sq_decontam_opts *o, sq_err *e);
/* The report path for an output (malloc'd). */
char *sq_decontam_report_path(const char *out);

/* Whether a training file counts as decontaminated: FILE.decontam.json exists beside it, says
 * "decontaminated": true, names FILE in "output_name" and counts as many records as FILE has
 * (so a file edited afterwards no longer counts). 1 yes; 0 no, with why (for a message: "no
 * X.decontam.json beside it", "it has N records but its marker ... counted M", ...); <0 when
 * FILE cannot be read (e says why). */
int sq_decontam_check(const char *file, char *why, size_t why_len, sq_err *e);
/* For a stage that makes `out` from `in` by removing or rewriting fields only (export, the
 * stage framework's close) or by dropping records: when
 * `in` counts as decontaminated, write OUT.decontam.json, `in`'s marker with out's name and
 * record count and "carried_from": in; otherwise remove an OUT.decontam.json left by an
 * earlier run, which no longer vouches for out. With no marker beside either file it reads
 * neither (0 at once). */
int sq_decontam_carry(const char *in, const char *out, sq_err *e);

#endif
