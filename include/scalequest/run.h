/* run — the whole ScaleQuest method from one YAML file: the config, the plan of stages, the
 * manifest that makes reruns make-like, the runner that executes each stage as a child
 * process of the `scalequest` binary, and the HTML report of a run directory.
 *
 * Why child processes: every stage is already a command that resumes after kill -9 and writes
 * its outputs whole or as a valid prefix; running it as `scalequest <cmd> ...` keeps the
 * runner independent of each stage's internals, gives each stage its own memory, and makes a
 * killed runner take its child with it (the child dies with its parent, and holds the run
 * directory's lock until it has).
 *
 * Ownership: sq_run_config_load allocates a config freed by sq_run_config_free; a plan built
 * from it borrows nothing from it (sq_run_plan_free); strings returned by accessors are owned
 * by the config.
 */
#ifndef SCALEQUEST_RUN_H
#define SCALEQUEST_RUN_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "scalequest/base.h"

/* ---- config ------------------------------------------------------------------------------ */

/* The complete default config (commented YAML, the paper's values). */
const char *sq_run_default_config(void);

typedef struct sq_run_config {
    char *path;  /* the user's file ("" for the default alone) */
    cJSON *root; /* the default with the user's values laid over it */
    cJSON *lines; /* dotted key -> line in the user's file (absent: the default's value) */
} sq_run_config;

/* Parse YAML text (name is used in messages) laid over the embedded default. An unknown key or
 * a value of the wrong type fails naming "name:line: key". */
int sq_run_config_parse(sq_run_config *c, const char *name, const char *text, size_t len, sq_err *e);
int sq_run_config_load(sq_run_config *c, const char *path, sq_err *e);
void sq_run_config_free(sq_run_config *c);
/* The value at a dotted key ("models.judge"), NULL when absent. */
const cJSON *sq_run_config_get(const sq_run_config *c, const char *key);
const char *sq_run_config_str(const sq_run_config *c, const char *key); /* NULL unless a string */
/* "FILE:LINE: key" when the key came from the user's file, else "key (default)". */
void sq_run_config_where(const sq_run_config *c, const char *key, char *buf, size_t n);

/* ---- plan ---------------------------------------------------------------------------------- */

enum { SQ_RUN_MAX_ARGS = 96, SQ_RUN_MAX_CMDS = 9, SQ_RUN_MAX_IO = 12 };

typedef struct sq_run_cmd {
    char *argv[SQ_RUN_MAX_ARGS]; /* argv[0] is the command ("train"); NULL-terminated */
    int argc;
} sq_run_cmd;

typedef struct sq_run_stage {
    const char *name;    /* config key, e.g. "filter_solvable" */
    const char *type;    /* for the cost table: data, train, infer, api, filter, eval */
    int enabled;
    sq_run_cmd cmds[SQ_RUN_MAX_CMDS];
    int ncmds;
    char *outputs[SQ_RUN_MAX_IO]; /* files or model folders this stage writes */
    int out_is_dir[SQ_RUN_MAX_IO];
    int noutputs;
    char *inputs[SQ_RUN_MAX_IO]; /* files or folders it reads (hashed) */
    const char *input_keys[SQ_RUN_MAX_IO]; /* the config key naming each, NULL: made by the plan */
    int ninputs;
    char *progress_file; /* what grows as it works (a JSONL, a train log) */
    int64_t total;       /* records or steps it will have at the end, -1 unknown */
    char *total_from;    /* else: total = the line count of this file at start */
    cJSON *options;      /* the stage's options as configured (owned) */
    int shards;          /* >1: cmds are that many `--shard I/N` processes run at once, whose
                            files are then merged in the order of shard_input (run_shards.c) */
    char *shard_input;
} sq_run_stage;

typedef struct sq_run_plan {
    char *run_dir;
    int threads;
    sq_run_stage *stages;
    int nstages;
    int final_stage; /* the stage whose output is the final dataset (-1 none) */
} sq_run_plan;

/* Build the argv of every stage from the config. Nothing is checked on disk yet. */
int sq_run_plan_build(sq_run_plan *p, const sq_run_config *c, sq_err *e);
void sq_run_plan_free(sq_run_plan *p);
int sq_run_plan_find(const sq_run_plan *p, const char *stage);
/* The number of stages and the name of each, in chain order (also for the default config). */
int sq_run_stage_count(void);
const char *sq_run_stage_name(int i);

/* Before any stage runs: each enabled stage's command exists in `exe` and knows every
 * configured option (asked through `exe CMD --help`); each model and data file exists or is
 * made by an earlier enabled stage; each server URL accepts connections. */
int sq_run_preflight(const sq_run_plan *p, const sq_run_config *c, const char *exe, sq_err *e);

/* ---- manifest -------------------------------------------------------------------------------- */

/* Content hash of a file or a folder (every file under it, by relative name), as 32 hex
 * digits. cache (may be NULL) maps path -> {size, mtime, hash} and skips rereading files whose
 * size and mtime did not change. */
int sq_run_hash_path(const char *path, cJSON *cache, char out[33], sq_err *e);

/* manifest.json in the run directory: {"version", "stages": {name: record}, "hash_cache"}. */
int sq_run_manifest_load(const char *run_dir, cJSON **m, sq_err *e);
int sq_run_manifest_save(const char *run_dir, const cJSON *m, sq_err *e);
/* Lines in a file (a JSONL's record count; a torn last line is not counted). -1 if absent. */
int64_t sq_run_count_lines(const char *path);

/* ---- runner ---------------------------------------------------------------------------------- */

typedef struct sq_run_opts {
    const char *exe;  /* the scalequest binary the stages run in (default /proc/self/exe) */
    const char *from; /* run this stage and everything after it (earlier ones must be done) */
    const char *only; /* run only this stage */
    int dry_run;      /* print the plan and what would run */
    int quiet;
    const cJSON *config; /* recorded in the manifest (may be NULL) */
} sq_run_opts;

/* Run the plan: stages whose inputs and options are unchanged since they finished are
 * skipped; changed ones are cleaned and redone (so is everything downstream, whose inputs
 * change in turn); a stage killed half-way is resumed in place. */
int sq_run_execute(const sq_run_plan *p, const sq_run_opts *o, sq_err *e);

/* ---- report ---------------------------------------------------------------------------------- */

/* Write RUN_DIR/report.html (or out_path): self-contained HTML with SVG plots. */
int sq_run_report(const char *run_dir, const char *out_path, sq_err *e);

#endif
