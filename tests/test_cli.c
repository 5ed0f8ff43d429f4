/* The shared option parser and the progress line. The parser lives with the command in
 * tools/; it is compiled into this test directly so it can be driven without a process. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "../tools/cli_options.c"
#include "test.h"

/* Send fd (1 or 2) to a file until capture_end, which returns what was written (caller frees). */
typedef struct {
    int fd, saved;
    char *path;
} capture;

static capture capture_begin(int fd) {
    capture c = {fd, -1, sq_path_join(sq_test_tmpdir(), "captured.txt")};
    fflush(stdout);
    fflush(stderr);
    c.saved = dup(fd);
    int f = open(c.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(f, fd);
    close(f);
    return c;
}

static char *capture_end(capture *c) {
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    char *data = NULL;
    sq_err e;
    if (sq_file_read_all(c->path, &data, NULL, &e)) data = sq_strdup("");
    free(c->path);
    return data;
}

typedef struct {
    const char *model, *name;
    int64_t n;
    double temp;
    int flag;
    sq_strlist in;
} parsed;

static int parse(parsed *p, char **out_err, int argc, char **argv, const char **pos, int max_pos, int *npos) {
    memset(p, 0, sizeof *p);
    sq_opt opts[] = {
        {"model", SQ_OPT_STR, &p->model, "PATH", "model"},
        {"name", SQ_OPT_STR, &p->name, NULL, "name"},
        {"n", SQ_OPT_INT, &p->n, NULL, "count"},
        {"temp", SQ_OPT_DOUBLE, &p->temp, NULL, "temperature"},
        {"flag", SQ_OPT_FLAG, &p->flag, NULL, "a flag"},
        {"in", SQ_OPT_LIST, &p->in, "PATH", "inputs"},
    };
    capture c = capture_begin(2);
    int rc = sq_cli_parse(argc, argv, "[options]", opts, (int)SQ_ARRAY_LEN(opts), pos, max_pos, npos);
    char *err = capture_end(&c);
    if (out_err) *out_err = err;
    else free(err);
    return rc;
}

#define ARGV(...) ((char *[]){"t", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"t", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(p, err, pos, maxp, npos, ...) parse(p, err, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), pos, maxp, npos)

SQ_TEST(cli_parses_values_both_spellings) {
    parsed p;
    const char *pos[4];
    int npos;
    CHECK_EQ_INT(PARSE(&p, NULL, pos, 4, &npos, "--model", "m.gguf", "--n=42", "--temp", "0.7", "--flag", "--name=a=b",
                       "file1", "--", "--not-an-option"),
                 -1);
    CHECK_EQ_STR(p.model, "m.gguf");
    CHECK_EQ_STR(p.name, "a=b");
    CHECK_EQ_INT(p.n, 42);
    CHECK_NEAR(p.temp, 0.7, 1e-12);
    CHECK_EQ_INT(p.flag, 1);
    CHECK_EQ_INT(npos, 2);
    CHECK_EQ_STR(pos[0], "file1");
    CHECK_EQ_STR(pos[1], "--not-an-option");
}

SQ_TEST(cli_list_options_repeat) {
    parsed p;
    int npos;
    CHECK_EQ_INT(PARSE(&p, NULL, NULL, 0, &npos, "--in", "a", "--in=b", "--in", "c"), -1);
    CHECK_EQ_INT(p.in.n, 3);
    CHECK_EQ_STR(p.in.items[0], "a");
    CHECK_EQ_STR(p.in.items[1], "b");
    CHECK_EQ_STR(p.in.items[2], "c");
}

SQ_TEST(cli_usage_errors_exit_2_with_message) {
    struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--bogus", NULL, "scalequest: t: unknown option '--bogus'\n"},
        {"-x", NULL, "scalequest: t: unknown option '-x' (options are spelled --name)\n"},
        {"--n", "abc", "scalequest: t: --n: 'abc' is not a whole number\n"},
        {"--temp", "hot", "scalequest: t: --temp: 'hot' is not a number\n"},
        {"--flag=1", NULL, "scalequest: t: --flag takes no value\n"},
        {"--model", NULL, "scalequest: t: --model needs a value\n"},
        {"extra", NULL, "scalequest: t: unexpected argument 'extra'\n"},
        {"--threads", "-1", "scalequest: t: --threads: -1 is out of range 0..1024\n"},
        {"--seed", "-1", "scalequest: t: --seed: -1 is negative; a seed is 0..9223372036854775807\n"},
        {"--log-level", "loud", "scalequest: t: --log-level: 'loud' is not one of error|warn|info|debug\n"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(cases); i++) {
        parsed p;
        int npos;
        char *err;
        char *argv[] = {"t", (char *)cases[i].a, (char *)cases[i].b, NULL};
        int rc = parse(&p, &err, cases[i].b ? 3 : 2, argv, NULL, 0, &npos);
        CHECKF(rc == SQ_EXIT_USAGE, "%s: rc %d", cases[i].a, rc);
        CHECKF(!strncmp(err, cases[i].want, strlen(cases[i].want)), "%s: stderr '%s'", cases[i].a, err);
        CHECKF(strstr(err, "Try 'scalequest t --help'.") != NULL, "%s: no hint in '%s'", cases[i].a, err);
        free(err);
    }
}

/* A library message that names the command already ("t: ...") is not prefixed twice. */
SQ_TEST(cli_failure_names_the_command_once) {
    capture c = capture_begin(2);
    CHECK_EQ_INT(sq_cli_fail("t", "%s", "t: t: boom"), SQ_EXIT_FAIL);
    sq_cli_fail("t", "%s", "tx: kept");
    char *err = capture_end(&c);
    CHECKF(err && !strcmp(err, "scalequest: t: boom\nscalequest: t: tx: kept\n"), "'%s'", err ? err : "");
    free(err);
}

SQ_TEST(cli_help_exits_0_and_lists_options) {
    parsed p;
    int npos;
    capture c = capture_begin(1);
    int rc = PARSE(&p, NULL, NULL, 0, &npos, "--help");
    char *out = capture_end(&c);
    CHECK_EQ_INT(rc, SQ_EXIT_OK);
    CHECK(strstr(out, "Usage: scalequest t [options]") != NULL);
    CHECK(strstr(out, "--model PATH") != NULL);
    CHECK(strstr(out, "--quiet") != NULL);
    free(out);
}

SQ_TEST(cli_common_options) {
    parsed p;
    int npos;
    CHECK_EQ_INT(PARSE(&p, NULL, NULL, 0, &npos, "--seed=17", "--threads", "2", "--quiet", "--log-level", "warn"), -1);
    CHECK(sq_common.seed == 17 && sq_common.seed_set);
    CHECK_EQ_INT(sq_common.threads, 2);
    CHECK(sq_common.quiet && sq_progress_is_quiet());
    CHECK_EQ_INT(sq_log_get_level(), SQ_LOG_WARN);
    sq_progress_set_quiet(0);
    memset(&sq_common, 0, sizeof sq_common);
}

SQ_TEST(progress_plain_lines_off_a_terminal_and_quiet) {
    sq_progress_set_quiet(0);
    capture c = capture_begin(2);
    sq_progress p;
    sq_progress_start(&p, "work", 100);
    sq_progress_add(&p, 5); /* too soon after start: nothing yet */
    p.t_last_draw -= 10;    /* pretend the redraw interval has passed */
    p.t_start -= 10;
    sq_progress_add(&p, 20);
    sq_progress_finish(&p);
    char *out = capture_end(&c);
    CHECK(!p.tty);
    CHECKF(strstr(out, "work 25/100 (25.0%)") && strstr(out, "ETA"), "got '%s'", out);
    CHECKF(strstr(out, "took") != NULL, "got '%s'", out);
    CHECK(strchr(out, '\r') == NULL && strstr(out, "\033[") == NULL);
    int lines = 0;
    for (char *s = out; *s; s++) lines += *s == '\n';
    CHECK_EQ_INT(lines, 2);
    free(out);

    sq_progress_set_quiet(1);
    c = capture_begin(2);
    sq_progress_start(&p, "work", 100);
    p.t_last_draw -= 10;
    p.t_start -= 10;
    sq_progress_add(&p, 50);
    sq_progress_finish(&p);
    out = capture_end(&c);
    CHECK_EQ_STR(out, "");
    free(out);
    sq_progress_set_quiet(0);
}
