/* filter.h and the difficulty judge: the language check on hand-made cases and on real
 * benchmark questions; filter lang, filter solvable and difficulty judge as stages — with the
 * world oracle, against a server that fails (500s) or answers garbage, on bad input, and
 * resumed after kill -9 at random moments. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scalequest/filter.h"
#include "scalequest/jsonl.h"
#include "scalequest/judge.h"
#include "scalequest/oracle.h"
#include "scalequest/world.h"
#include "test.h"

/* ---- the language check --------------------------------------------------------------- */

static const char *lang_of(const char *s, sq_lang_target t) {
    return sq_lang_reason_name(sq_lang_check(s, strlen(s), t, NULL));
}

SQ_TEST(lang_keeps_math_symbols_and_accented_latin) {
    const char *keep[] = {
        "What is 2+2?",
        "A circle has radius 3 cm. Find its area in terms of \xcf\x80.",              /* π */
        "The angle is 30\xc2\xb0; what is 5 \xc3\x97 6 \xc3\xb7 2?",                  /* ° × ÷ */
        "Compute \xe2\x88\x9a" "2 \xe2\x89\x88 1.414 and x\xc2\xb2 \xe2\x89\xa4 4.",   /* √ ≈ ² ≤ */
        "A ticket costs \xe2\x82\xac" "12 or \xc2\xa3" "10.",                         /* € £ */
        "Let $f(x) = \\frac{1}{x}$ for $x \\neq 0$; find $\\int_1^e f(x)\\,dx$.",
        "Jos\xc3\xa9 bought a caf\xc3\xa9 au lait; Poincar\xc3\xa9 and Erd\xc5\x91s smiled.",
        "For all x \xe2\x88\x88 \xe2\x84\x9d, is \xf0\x9d\x91\xa5 \xe2\x89\xa5 0?",   /* ∈ ℝ 𝑥 ≥ */
        "Angles \xce\xb1, \xce\xb2 and \xce\xb8 with \xce\x94x \xe2\x86\x92 0.",        /* α β θ Δ → */
        "She said \xe2\x80\x9chello\xe2\x80\x9d \xe2\x80\x94 it\xe2\x80\x99s 5\xc2\xa0km\xe2\x80\xa6", /* “ ” — ’ nbsp … */
        "Line one\nline two\twith a tab\r\n",
        "\xc2\xbd of 8 is 4, \xc2\xbe of 8 is 6.",
        "2 + 2 = ?",
        "Is \xce\xb1\xce\xb2\xce\xb3 = 1 when \xce\xb1=\xce\xb2=\xce\xb3=1?",        /* one Greek "word" of symbols */
        "Zero\xe2\x80\x8bwidth space and a line\xe2\x80\xa8separator",
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(keep); i++)
        CHECKF(!strcmp(lang_of(keep[i], SQ_LANG_EN), "ok"), "case %zu dropped as %s: %s", i, lang_of(keep[i], SQ_LANG_EN),
               keep[i]);
}

SQ_TEST(lang_drops_other_scripts_mojibake_and_control_characters) {
    struct {
        const char *text, *why;
    } drop[] = {
        {"Tom has 5 apples. \xe4\xbb\x96\xe6\x9c\x89\xe5\x87\xa0\xe4\xb8\xaa\xe8\x8b\xb9\xe6\x9e\x9c?", "other_script"},
        {"How many \xd1\x8f\xd0\xb1\xd0\xbb\xd0\xbe\xd0\xba does Tom have?", "other_script"},
        {"\xd9\x83\xd9\x85 \xd8\xb9\xd8\xaf\xd8\xaf 5 + 3?", "other_script"},
        {"Compute \xce\xb5\xce\xbd\xce\xb1 \xcf\x80\xce\xbb\xce\xb7\xce\xb8\xce\xbf\xcf\x82 of 5 items.", "other_script"},
        {"\xe3\x81\x82\xe3\x82\x8a\xe3\x81\x8c\xe3\x81\xa8\xe3\x81\x86 2+2?", "other_script"},
        {"\xea\xb3\xbc\xec\x9d\xbc 3 + 4 = ?", "other_script"},
        {"It\xc3\xa2\xe2\x82\xac\xe2\x84\xa2s 5 apples.", "mojibake"},   /* ’ as UTF-8 read as CP-1252 */
        {"The caf\xc3\x83\xc2\xa9 sells tea.", "mojibake"},              /* é */
        {"An angle of 30\xc3\x82\xc2\xb0.", "mojibake"},                  /* ° */
        {"Area is \xc3\x8f\xe2\x82\xac r^2.", "mojibake"},                /* π */
        {"Broken \xef\xbf\xbd byte.", "mojibake"},                        /* U+FFFD */
        {"Bell\x07 here", "control_char"},
        {"Escape \x1b[31m red", "control_char"},
        {"Delete\x7f", "control_char"},
        {"C1 \xc2\x85 next line", "control_char"},
        {"Bad byte \xff here", "invalid_utf8"},
        {"Cut \xe2\x82", "invalid_utf8"},
        {"Overlong \xc0\xaf", "invalid_utf8"},
        {"Surrogate \xed\xa0\x80", "invalid_utf8"},
        {"Private \xee\x80\x80 use", "garbled"},
        {"Nonchar \xef\xbf\xbf", "garbled"},
        {"", "empty"},
        {"  \n\t ", "empty"},
    };
    for (size_t i = 0; i < SQ_ARRAY_LEN(drop); i++)
        CHECKF(!strcmp(lang_of(drop[i].text, SQ_LANG_EN), drop[i].why), "case %zu: %s, expected %s", i,
               lang_of(drop[i].text, SQ_LANG_EN), drop[i].why);
    /* the offending offset is reported */
    size_t at;
    CHECK(sq_lang_check("abc \x01", 5, SQ_LANG_EN, &at) == SQ_LANG_CONTROL && at == 4);
    /* other targets */
    CHECK_EQ_STR(lang_of("\xe5\xb0\x8f\xe6\x98\x8e\xe6\x9c\x89 5 \xe4\xb8\xaa\xe8\x8b\xb9\xe6\x9e\x9c, x=3\xe3\x80\x82", SQ_LANG_ZH), "ok");
    CHECK_EQ_STR(lang_of("Tom has 5 apples.", SQ_LANG_ZH), "no_target_script");
    CHECK_EQ_STR(lang_of("\xd0\xa1\xd0\xba\xd0\xbe\xd0\xbb\xd1\x8c\xd0\xba\xd0\xbe x + 2?", SQ_LANG_RU), "ok");
    CHECK_EQ_STR(lang_of("\xd0\xa1\xd0\xba\xd0\xbe \xe4\xbb\x96", SQ_LANG_RU), "other_script");
    sq_lang_target t;
    sq_err e;
    CHECK(sq_lang_parse("fr", &t, &e) == SQ_EINVAL);
}

/* Real English benchmark questions: the share kept, per file (>= 99.5%), beside the share
 * the official pure-ASCII rule keeps. */
SQ_TEST(lang_keeps_real_english_questions) {
    struct {
        const char *file, *field;
    } sets[] = {
        {"data/gsm8k_train.jsonl", "question"},
        {"data/gsm8k_test.jsonl", "question"},
        {"data/math_test.jsonl", "problem"},
        {"data/college_math_test.jsonl", "question"},
        {"data/olympiadbench_OE_TO_maths_en_COMP.jsonl", "question"},
        {"data/minerva_math_test.jsonl", "problem"},
    };
    int any = 0;
    for (size_t s = 0; s < SQ_ARRAY_LEN(sets); s++) {
        const char *path = sq_test_asset(sets[s].file);
        if (!path) continue;
        any = 1;
        sq_jsonl_reader *r;
        sq_err e;
        REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
        cJSON *rec;
        long n = 0, kept = 0, ascii = 0;
        while (sq_jsonl_next(r, &rec, &e) == 1) {
            const char *q = sq_rec_str(rec, sets[s].field);
            REQUIRE(q);
            size_t len = strlen(q), where;
            n++;
            sq_lang_reason why = sq_lang_check(q, len, SQ_LANG_EN, &where);
            kept += why == SQ_LANG_OK;
            int is_ascii = 1;
            for (size_t k = 0; k < len; k++) is_ascii &= (unsigned char)q[k] < 128;
            ascii += is_ascii;
            if (why != SQ_LANG_OK)
                printf("  also %s: dropped (%s at byte %zu): %.60s...\n", sets[s].file, sq_lang_reason_name(why), where, q);
            cJSON_Delete(rec);
        }
        sq_jsonl_close(r);
        printf("  also %-45s %5ld questions: kept %6.2f%% (official ASCII rule: %6.2f%%)\n", sets[s].file, n,
               100.0 * (double)kept / (double)n, 100.0 * (double)ascii / (double)n);
        CHECKF(n > 0 && kept * 1000 >= n * 995, "%s: kept %ld of %ld", sets[s].file, kept, n);
    }
    if (!any) SKIP("../shared/assets/data not present");
}

/* Real questions made mixed-language or garbled are all dropped, for the right reason. */
SQ_TEST(lang_drops_constructed_mixed_and_garbled_real_questions) {
    const char *path = sq_test_asset("data/gsm8k_test.jsonl");
    if (!path) SKIP("../shared/assets/data not present");
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, path, 0, &e) == 0);
    const char *tails[] = {" \xe4\xbd\xa0\xe8\x83\xbd\xe5\xb8\xae\xe6\x88\x91\xe5\x90\x97?",   /* zh */
                           " \xd0\x9f\xd0\xbe\xd0\xb6\xd0\xb0\xd0\xbb\xd1\x83\xd0\xb9\xd1\x81\xd1\x82\xd0\xb0.", /* ru */
                           " \xd8\xb4\xd9\x83\xd8\xb1\xd8\xa7.",                                    /* ar */
                           " \xe0\xa4\xa7\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xaf\xe0\xa4\xb5\xe0\xa4\xbe\xe0\xa4\xa6"}; /* hi */
    cJSON *rec;
    int n = 0, bad = 0;
    sq_buf b = {0};
    while (n < 200 && sq_jsonl_next(r, &rec, &e) == 1) {
        const char *q = sq_rec_str(rec, "question");
        size_t len = strlen(q);
        /* 1: a sentence in another language appended */
        sq_buf_reset(&b);
        sq_buf_puts(&b, q);
        sq_buf_puts(&b, tails[n % 4]);
        bad += sq_lang_check(b.data, b.len, SQ_LANG_EN, NULL) != SQ_LANG_OTHER_SCRIPT;
        /* 2: mojibake — the question with a curly apostrophe and a degree sign, its UTF-8
         * bytes read back as Latin-1 and written as UTF-8 again */
        sq_buf_reset(&b);
        const char *extra = "It\xe2\x80\x99s 20\xc2\xb0 today. ";
        for (const unsigned char *p = (const unsigned char *)extra; *p; p++) {
            if (*p < 0x80) sq_buf_append(&b, p, 1);
            else {
                unsigned char two[2] = {(unsigned char)(0xC0 | (*p >> 6)), (unsigned char)(0x80 | (*p & 0x3F))};
                sq_buf_append(&b, two, 2);
            }
        }
        sq_buf_append(&b, q, len);
        bad += sq_lang_check(b.data, b.len, SQ_LANG_EN, NULL) != SQ_LANG_MOJIBAKE;
        /* 3: a control byte or a broken byte in the middle */
        sq_buf_reset(&b);
        sq_buf_append(&b, q, len / 2);
        sq_buf_puts(&b, n % 2 ? "\x1b" : "\xc3(");
        sq_buf_puts(&b, q + len / 2);
        sq_lang_reason want = n % 2 ? SQ_LANG_CONTROL : SQ_LANG_INVALID_UTF8;
        bad += sq_lang_check(b.data, b.len, SQ_LANG_EN, NULL) != want;
        n++;
        cJSON_Delete(rec);
    }
    sq_buf_free(&b);
    sq_jsonl_close(r);
    CHECK_EQ_INT(n, 200);
    CHECKF(bad == 0, "%d of %d constructed questions not dropped for the right reason", bad, 3 * n);
}

/* ---- stages: helpers ------------------------------------------------------------------ */

/* One directory per case: sq_test_tmpdir() makes a new one on every call. */
static char g_dir[600];
static const char *case_dir(void) {
    snprintf(g_dir, sizeof g_dir, "%s", sq_test_tmpdir());
    return g_dir;
}
static char *tmp_path(const char *name) { return sq_path_join(g_dir[0] ? g_dir : case_dir(), name); }

static char *slurp(const char *path) {
    char *data = NULL;
    size_t len;
    sq_err e;
    return sq_file_read_all(path, &data, &len, &e) ? NULL : data;
}

/* n world questions; every third one broken (a pronoun that does not match). */
static void write_world(const char *path, int n) {
    FILE *f = fopen(path, "w");
    sq_world_opts o;
    sq_world_opts_default(&o);
    o.max_steps = 5;
    for (int i = 0; i < n; i++) {
        sq_world_problem p;
        sq_err e;
        if (sq_world_generate(&o, 5, (uint64_t)i, &p, &e)) break;
        if (i % 3 == 2) {
            char *s = strstr(p.query, ". She "), *h = strstr(p.query, ". He ");
            if (s) memcpy(s, ". He  ", 6);
            else if (h) memcpy(h, ". She", 5);
            else snprintf(p.query, sizeof p.query, "Mia has 4 apples. He sells 9 apples. How many apples does Mia have now?");
        }
        cJSON *rec = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof id, "w%05d", i);
        cJSON_AddStringToObject(rec, "id", id);
        cJSON_AddStringToObject(rec, "query", p.query);
        char *line = cJSON_PrintUnformatted(rec);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(rec);
    }
    fclose(f);
}

static long count_lines(const char *path, const char *needle) {
    char *c = NULL;
    if (needle) sq_test_sh(&c, "grep -c '%s' '%s' 2>/dev/null", needle, path);
    else sq_test_sh(&c, "cat '%s' 2>/dev/null | wc -l", path);
    long n = c ? atol(c) : 0;
    free(c);
    return n;
}

/* Every line of out and dropped parses, and the ids of both together are those of `in`,
 * each once. */
static void check_each_id_once(const char *in, const char *out, const char *dropped, int line) {
    char *bad = NULL;
    sq_test_sh(&bad, "cat '%s' '%s' 2>/dev/null | python3 -c 'import sys,json\n"
                     "ids=[json.loads(l)[\"id\"] for l in sys.stdin]\n"
                     "want=[json.loads(l)[\"id\"] for l in open(\"%s\") if \"\\\"id\\\"\" in l]\n"
                     "print(\"ok\" if sorted(ids)==sorted(want) else \"got %%d ids (%%d distinct), want %%d\" %% "
                     "(len(ids),len(set(ids)),len(want)))' 2>&1",
                out, dropped, in);
    if (!bad || strncmp(bad, "ok", 2)) sq_test_fail(__FILE__, line, "ids: %s", bad ? bad : "(none)");
    free(bad);
}

/* Run `cmd` (a shell command writing out and out's dropped file) once to a reference, then
 * start it `rounds` times and kill -9 it at a random moment, then once more to the end: the
 * output and dropped files must be byte for byte the reference's. */
static void kill_resume(const char *cmd_fmt, const char *in, const char *name, int line) {
    char *ref = tmp_path("ref.jsonl"), *out = tmp_path(name), *refd = tmp_path("ref.dropped.jsonl");
    char outd[700];
    snprintf(outd, sizeof outd, "%.*s.dropped.jsonl", (int)(strlen(out) - 6), out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, cmd_fmt, ref);
    double t0 = sq_now();
    if (sq_test_sh(NULL, "%s", cmd) != 0) {
        sq_test_fail(__FILE__, line, "reference run failed: %s", cmd);
        return;
    }
    double run_s = sq_now() - t0;
    char *want = slurp(ref), *want_d = slurp(refd);
    snprintf(cmd, sizeof cmd, cmd_fmt, out);
    sq_rng r;
    sq_rng_seed(&r, (uint64_t)getpid() ^ (uint64_t)(sq_now() * 1e6));
    int kills = 0, partial = 0;
    for (int round = 0; round < 3; round++) {
        char *pid_s = NULL;
        sq_test_sh(&pid_s, "%s >/dev/null 2>&1 & echo $!", cmd);
        pid_t pid = pid_s ? (pid_t)atol(pid_s) : 0;
        free(pid_s);
        if (pid <= 0) break;
        /* Kill after the run has committed something (a fast machine finishes the first
         * records before a blind random delay is over; a slow one may not have started), at a
         * random moment after that. */
        for (double t = sq_now(); sq_now() - t < 30 && count_lines(out, NULL) + count_lines(outd, NULL) == 0 &&
                                  kill(pid, 0) == 0;)
            usleep(2000);
        usleep((useconds_t)(sq_rng_uniform(&r) * run_s * 0.3 * 1e6));
        if (kill(pid, SIGKILL) == 0) kills++;
        sq_test_sh(NULL, "while kill -0 %d 2>/dev/null; do sleep 0.01; done", (int)pid);
        long done = count_lines(out, NULL) + count_lines(outd, NULL);
        partial += done > 0;
    }
    if (sq_test_sh(NULL, "%s", cmd) != 0) sq_test_fail(__FILE__, line, "resumed run failed: %s", cmd);
    char *got = slurp(out), *got_d = slurp(outd);
    if (!(kills > 0 && partial > 0))
        sq_test_fail(__FILE__, line, "%d kills, %d with part of the output written (run %.2fs)", kills, partial, run_s);
    if (!want || !got || strcmp(want, got)) sq_test_fail(__FILE__, line, "resumed output differs from the reference");
    if (!want_d || !got_d || strcmp(want_d, got_d))
        sq_test_fail(__FILE__, line, "resumed dropped file differs from the reference");
    check_each_id_once(in, out, outd, line);
    free(want);
    free(want_d);
    free(got);
    free(got_d);
    free(ref);
    free(refd);
    free(out);
}

/* ---- filter lang as a stage ------------------------------------------------------------ */

SQ_TEST(filter_lang_stage_funnel_and_bad_input) {
    case_dir();
    char *in = tmp_path("in.jsonl"), *out = tmp_path("out.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"What is 2 \\u00d7 3?\"}\n"
          "{\"id\":\"b\",\"query\":\"\\u4ed6\\u6709 5 apples\"}\n"
          "{\"id\":\"c\",\"text\":\"no query field\"}\n"
          "{\"id\":\"d\",\"query\":42}\n"
          "{\"id\":\"e\",\"query\":\"caf\\u00c3\\u00a9\"}\n",
          f);
    fclose(f);
    char *msg = NULL;
    REQUIRE(sq_test_sh(&msg, "'%s' filter lang --in '%s' --out '%s' 2>&1", sq_test_cli(), in, out) == 0);
    CHECKF(msg && strstr(msg, "5 in, 1 kept, 4 dropped") && strstr(msg, "no_query 2") && strstr(msg, "other_script 1") &&
               strstr(msg, "mojibake 1"),
           "funnel: %s", msg ? msg : "");
    free(msg);
    char *kept = slurp(out);
    CHECKF(kept && strstr(kept, "\"id\":\"a\"") && strstr(kept, "\"lang\":\"en\""), "%s", kept ? kept : "");
    free(kept);
    char *dropped = tmp_path("out.dropped.jsonl"), *d = slurp(dropped);
    CHECKF(d && strstr(d, "\"lang_detail\":\"U+4ED6 at byte 0\""), "%s", d ? d : "");
    free(d);
    /* a torn line: a clear error naming the line; nothing lost, --skip-bad counts it */
    char *torn = tmp_path("torn.jsonl"), *tout = tmp_path("tout.jsonl");
    f = fopen(torn, "w");
    fputs("{\"id\":\"a\",\"query\":\"ok\"}\n{\"id\":\"b\",\"query\":\"cut of\n{\"id\":\"c\",\"query\":\"fine\"}\n", f);
    fclose(f);
    msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' filter lang --in '%s' --out '%s' 2>&1", sq_test_cli(), torn, tout);
    CHECK(rc != 0);
    CHECKF(msg && strstr(msg, "torn.jsonl:2"), "message: %s", msg ? msg : "");
    free(msg);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' filter lang --in '%s' --out '%s' --skip-bad 2>&1", sq_test_cli(), torn, tout);
    CHECKF(rc == 0 && count_lines(tout, NULL) == 2, "rc %d: %s", rc, msg ? msg : "");
    free(msg);
    /* usage errors */
    CHECK(sq_test_sh(NULL, "'%s' filter lang --in '%s' --out '%s' --lang xx 2>/dev/null", sq_test_cli(), in, out) == 2);
    CHECK(sq_test_sh(NULL, "'%s' filter bogus 2>/dev/null", sq_test_cli()) == 2);
    free(in);
    free(out);
    free(dropped);
    free(torn);
    free(tout);
}

SQ_TEST(filter_lang_resumes_after_kill_9) {
    case_dir();
    char *in = tmp_path("big.jsonl");
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 100000; i++)
        fprintf(f, "{\"id\":\"r%06d\",\"query\":\"Question %d: what is %d \\u00d7 %d?%s\"}\n", i, i, i, i % 7,
                i % 5 == 0 ? " \\u4ed6" : "");
    fclose(f);
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "'%s' filter lang --in '%s' --out '%%s' --quiet", sq_test_cli(), in);
    kill_resume(fmt, in, "lang.jsonl", __LINE__);
    free(in);
}

/* ---- filter solvable ------------------------------------------------------------------- */

SQ_TEST(filter_solvable_with_the_world_oracle) {
    case_dir();
    char *in = tmp_path("w.jsonl"), *out = tmp_path("ws.jsonl");
    write_world(in, 30);
    FILE *f = fopen(in, "a");
    fputs("{\"id\":\"nq\",\"prompt\":\"no query\"}\n", f);
    fclose(f);
    char *msg = NULL;
    REQUIRE(sq_test_sh(&msg, "'%s' filter solvable --model world: --in '%s' --out '%s' 2>&1", sq_test_cli(), in, out) == 0);
    CHECKF(msg && strstr(msg, "31 in, 20 kept, 11 dropped") && strstr(msg, "unsolvable 10") && strstr(msg, "no_query 1") &&
               strstr(msg, "20 yes, 10 no, 0 unknown"),
           "%s", msg ? msg : "");
    free(msg);
    /* every kept record is one the world solves, with the verdict and the judge's reply */
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    int n = 0;
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        int64_t a;
        CHECK(sq_world_parse(sq_rec_str(rec, "query"), &a, NULL, NULL) == 0);
        CHECK_EQ_STR(sq_rec_str(rec, "verdict"), "yes");
        const char *jr = sq_rec_str(rec, "judge_reply");
        CHECK(jr && strstr(jr, "Let me solve it step by step"));
        n++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    CHECK_EQ_INT(n, 20);
    /* a rerun does nothing */
    msg = NULL;
    REQUIRE(sq_test_sh(&msg, "'%s' filter solvable --model world: --in '%s' --out '%s' 2>&1", sq_test_cli(), in, out) == 0);
    CHECKF(msg && strstr(msg, "31 in, 0 kept, 0 dropped") && strstr(msg, "31 already done"), "%s", msg ? msg : "");
    free(msg);
    /* an unknown model spec or a missing file: one clear line, no output */
    char *o2 = tmp_path("none.jsonl");
    msg = NULL;
    CHECK(sq_test_sh(&msg, "'%s' filter solvable --model /no/such/model.gguf --in '%s' --out '%s' 2>&1", sq_test_cli(), in,
                     o2) == 1);
    CHECKF(msg && strstr(msg, "filter solvable:") && strstr(msg, "model.gguf"), "%s", msg ? msg : "");
    CHECK(!sq_file_exists(o2));
    free(msg);
    free(o2);
    free(in);
    free(out);
}

SQ_TEST(filter_solvable_resumes_after_kill_9) {
    case_dir();
    char *in = tmp_path("wk.jsonl");
    write_world(in, 2500);
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "'%s' filter solvable --model world: --in '%s' --out '%%s' --quiet", sq_test_cli(), in);
    kill_resume(fmt, in, "solv.jsonl", __LINE__);
    free(in);
}

/* ---- against a misbehaving OpenAI-compatible server (tests/peers/fake_openai.py) ------- */

typedef struct fake {
    pid_t pid;
    int port;
} fake;

static int fake_start(fake *fk) {
    char *out = NULL;
    int rc = sq_test_sh(&out, "cd tests/peers && (python3 -u -c 'import fake_openai,time\n"
                              "s,p=fake_openai.start(); print(p, flush=True); time.sleep(300)' "
                              "> '%s/fake.port' 2>/dev/null & echo $!)",
                        g_dir);
    fk->pid = out ? (pid_t)atol(out) : 0;
    free(out);
    if (rc || fk->pid <= 0) return -1;
    char *pf = tmp_path("fake.port");
    for (int i = 0; i < 200 && !fk->port; i++) {
        char *s = slurp(pf);
        if (s && atoi(s) > 0) fk->port = atoi(s);
        free(s);
        usleep(20000);
    }
    free(pf);
    return fk->port > 0 ? 0 : -1;
}

static void fake_stop(fake *fk) {
    if (fk->pid > 0) {
        kill(fk->pid, SIGKILL);
        waitpid(fk->pid, NULL, WNOHANG);
    }
}

SQ_TEST(filter_solvable_against_500s_and_garbage_replies) {
    case_dir();
    if (sq_test_sh(NULL, "python3 -c 'import http.server' 2>/dev/null") != 0) SKIP("python3 not available");
    fake fk = {0};
    REQUIRE(fake_start(&fk) == 0);
    /* the fake server echoes the prompt back (a reply with no verdict but the instruction's
     * "either 'Yes' or 'No'") and obeys the fault plan after '|' in the question */
    char *in = tmp_path("f.jsonl"), *out = tmp_path("fo.jsonl"), *failed = tmp_path("ff.jsonl");
    FILE *f = fopen(in, "w");
    /* faults per attempt; the last plan fails the first two runs' 4 attempts each */
    const char *plans[] = {"", "<<fault:500>>", "<<fault:500,503>>", "<<fault:trunc>>", "<<fault:drop>>",
                           "<<fault:500,500,500,500,500,500,500,500>>"};
    for (int i = 0; i < 24; i++) fprintf(f, "{\"id\":\"f%02d\",\"query\":\"Q%d%s\"}\n", i, i, plans[i % 6]);
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args,
             "--model 'http://127.0.0.1:%d/v1#fake' --in '%s' --out '%s' --failed '%s' --max-retries 3 --timeout 2 "
             "--concurrency 8",
             fk.port, in, out, failed);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' filter solvable %s 2>&1", sq_test_cli(), args);
    /* the always-failing ones are failed (exit 1, named in the failed file), the others are
     * all settled: an echo has no verdict, so each is dropped as no_verdict — where the
     * official rule would have kept every one ("yes" is in the echoed instruction) */
    CHECKF(rc == 1 && msg && strstr(msg, "24 in, 0 kept, 20 dropped (no_verdict 20), 4 failed"), "rc %d: %s", rc,
           msg ? msg : "");
    free(msg);
    CHECK_EQ_INT(count_lines(failed, "HTTP 500"), 4);
    char *dropped = tmp_path("fo.dropped.jsonl");
    char *d = slurp(dropped);
    CHECKF(d && strstr(d, "\"verdict\":\"unknown\"") && strstr(d, "\"judge_reply\":\"echo:Please act as a professional"),
           "%.300s", d ? d : "");
    free(d);
    /* a rerun retries only the failed ones (they fail again: nothing lost, nothing twice) */
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' filter solvable %s 2>&1", sq_test_cli(), args);
    CHECKF(rc == 1 && msg && strstr(msg, "24 in, 0 kept, 0 dropped, 4 failed; 20 already done"), "%s", msg ? msg : "");
    free(msg);
    /* the third time the server answers them */
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' filter solvable %s 2>&1", sq_test_cli(), args);
    CHECKF(rc == 0 && msg && strstr(msg, "24 in, 0 kept, 4 dropped (no_verdict 4), 0 failed; 20 already done"), "%s",
           msg ? msg : "");
    free(msg);
    check_each_id_once(in, out, dropped, __LINE__);
    /* with --keep-unknown the echoes are kept, verdict "unknown" */
    char *out2 = tmp_path("fk.jsonl");
    snprintf(args, sizeof args, "--model 'http://127.0.0.1:%d/v1#fake' --in '%s' --out '%s' --max-retries 3 --timeout 2 "
                                "--keep-unknown",
             fk.port, in, out2);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' filter solvable %s 2>&1", sq_test_cli(), args);
    CHECKF(rc == 0 && msg && strstr(msg, "24 in, 24 kept, 0 dropped, 0 failed"), "%s", msg ? msg : "");
    CHECK_EQ_INT(count_lines(out2, "\"verdict\":\"unknown\""), 24);
    free(msg);
    fake_stop(&fk);
    free(in);
    free(out);
    free(out2);
    free(failed);
    free(dropped);
}

/* ---- difficulty judge (library) ------------------------------------------------------- */

static int judge_file(const char *spec, const char *in, const char *out, const char *failed, int keep_unknown,
                      sq_stage_counts *c, sq_err *e) {
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    bo.max_retries = 2;
    bo.timeout_s = 2;
    bo.concurrency = 8;
    sq_backend *b = NULL;
    int rc = sq_pipeline_backend_open(&b, spec, &bo, e);
    if (rc) return rc;
    sq_difficulty_judge_opts o;
    sq_difficulty_judge_opts_default(&o);
    o.stage.in = in;
    o.stage.out = out;
    o.stage.failed = failed;
    o.keep_unknown = keep_unknown;
    rc = sq_difficulty_judge_run(b, &o, c, e);
    sq_backend_close(b);
    return rc;
}

SQ_TEST(difficulty_judge_rates_world_questions_by_steps) {
    case_dir();
    char *in = tmp_path("d.jsonl"), *out = tmp_path("do.jsonl");
    write_world(in, 60);
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    sq_err e;
    REQUIRE(judge_file("world:", in, out, NULL, 0, &c, &e) == 0);
    CHECK_EQ_INT(c.kept, 60);
    sq_jsonl_reader *r;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    int n = 0, seen[6] = {0};
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        double rating;
        REQUIRE(sq_rec_num(rec, "difficulty_rating", &rating) == 0);
        int steps;
        int64_t a;
        if (sq_world_parse(sq_rec_str(rec, "query"), &a, &steps, NULL) == 0) {
            int want = steps <= 1 ? 1 : steps == 2 ? 2 : steps == 3 ? 3 : steps <= 5 ? 4 : 5;
            CHECK_EQ_INT((int)rating, want);
        }
        CHECK(rating >= 1 && rating <= 5);
        seen[(int)rating]++;
        CHECK(strstr(sq_rec_str(rec, "judge_reply"), "\"difficulty\":"));
        n++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    CHECK_EQ_INT(n, 60);
    CHECK(seen[1] && seen[3]);
    /* bad input: a torn line is an error naming file:line; nothing half-written */
    char *torn = tmp_path("dt.jsonl"), *tout = tmp_path("dto.jsonl");
    FILE *f = fopen(torn, "w");
    fputs("{\"id\":\"a\",\"query\":\"Mia has 2 apples. She buys 3 more apples. How many apples does Mia have now?\"}\n"
          "{\"id\":\"b\",\"query\":\n",
          f);
    fclose(f);
    CHECK(judge_file("world:", torn, tout, NULL, 0, &c, &e) == SQ_EPARSE);
    CHECKF(strstr(e.msg, "dt.jsonl:2"), "%s", e.msg);
    free(torn);
    free(tout);
    free(in);
    free(out);
}

SQ_TEST(difficulty_judge_against_500s_and_garbage_replies) {
    case_dir();
    if (sq_test_sh(NULL, "python3 -c 'import http.server' 2>/dev/null") != 0) SKIP("python3 not available");
    fake fk = {0};
    REQUIRE(fake_start(&fk) == 0);
    char *in = tmp_path("g.jsonl"), *out = tmp_path("go.jsonl"), *failed = tmp_path("gf.jsonl");
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 12; i++)
        fprintf(f, "{\"id\":\"g%02d\",\"query\":\"Q%d%s\"}\n", i, i,
                i % 4 == 3 ? "<<fault:always500>>" : i % 4 == 1 ? "<<fault:500>>" : "");
    fputs("{\"id\":\"nq\"}\n", f);
    fclose(f);
    char spec[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/v1#fake", fk.port);
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    sq_err e;
    /* the echo holds the prompt's own placeholder "[very easy/.../very hard]": no rating */
    int rc = judge_file(spec, in, out, failed, 0, &c, &e);
    CHECKF(rc == SQ_EIO, "rc %d: %s", rc, e.msg);
    CHECK_EQ_INT(c.kept, 0);
    CHECK_EQ_INT(c.dropped, 10); /* 9 unparsable, 1 no_query */
    CHECK_EQ_INT(c.failed, 3);
    CHECK_EQ_INT(count_lines(failed, "HTTP 500"), 3);
    char *dropped = tmp_path("go.dropped.jsonl");
    CHECK_EQ_INT(count_lines(dropped, "unparsable_rating"), 9);
    CHECK_EQ_INT(count_lines(dropped, "no_query"), 1);
    fake_stop(&fk);
    free(dropped);
    free(in);
    free(out);
    free(failed);
}

SQ_TEST(difficulty_judge_resumes_after_kill_9) {
    case_dir();
    char *in = tmp_path("dk.jsonl"), *ref = tmp_path("dref.jsonl"), *out = tmp_path("dk_out.jsonl");
    write_world(in, 6000);
    sq_progress_set_quiet(1);
    sq_stage_counts c;
    sq_err e;
    double t0 = sq_now();
    REQUIRE(judge_file("world:", in, ref, NULL, 0, &c, &e) == 0);
    double run_s = sq_now() - t0;
    sq_rng r;
    sq_rng_seed(&r, (uint64_t)getpid());
    int kills = 0;
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            sq_err ce;
            sq_stage_counts cc;
            _exit(judge_file("world:", in, out, NULL, 0, &cc, &ce) ? 1 : 0);
        }
        usleep((useconds_t)(sq_rng_uniform(&r) * run_s * 0.6 * 1e6));
        kills += kill(pid, SIGKILL) == 0;
        waitpid(pid, NULL, 0);
    }
    CHECK(kills > 0);
    long partial = count_lines(out, NULL);
    REQUIRE(judge_file("world:", in, out, NULL, 0, &c, &e) == 0);
    CHECKF(c.skipped == partial || c.skipped >= partial - 1, "skipped %lld, %ld lines were there", (long long)c.skipped,
           partial);
    char *want = slurp(ref), *got = slurp(out);
    CHECK(want && got && !strcmp(want, got));
    free(want);
    free(got);
    check_each_id_once(in, out, "/dev/null", __LINE__);
    free(in);
    free(ref);
    free(out);
}

/* ---- a real model over HTTP ----------------------------------------------------------- */

/* `scalequest serve` with stories260K (a real, tiny story model, chatml rendered by the
 * server) as the judge of filter solvable (the CLI) and of the difficulty judge (the
 * library), through the OpenAI-compatible path. A story model is no judge: what is checked is
 * that every request is settled, with its reply and a parse outcome, and the outcomes are
 * counted (SQ_LONG=1: 100 GSM8K questions, else 4). */
SQ_TEST(real_model_over_http_parse_outcomes) {
    case_dir();
    const char *model = sq_test_asset("models/stories260K.gguf"), *data = sq_test_asset("data/gsm8k_test.jsonl");
    if (!model || !data) SKIP("../shared/assets not present");
    int n = getenv("SQ_LONG") ? 100 : 4, max_tokens = getenv("SQ_LONG") ? 128 : 24;
    char *in = tmp_path("g.jsonl"), *port_file = tmp_path("serve.out");
    REQUIRE(sq_test_sh(NULL, "head -n %d '%s' | python3 -c 'import sys,json\n"
                             "for i,l in enumerate(sys.stdin): print(json.dumps({\"id\":\"g%%03d\"%%i,\"query\":json.loads(l)[\"question\"]}))'"
                             " > '%s'", n, data, in) == 0);
    /* the server runs the release build when there is one: the model's speed is not what
     * is tested, the client side (the stage) runs sanitized */
    const char *server = sq_file_exists("build/rel/scalequest") ? "build/rel/scalequest" : sq_test_cli();
    char *pid_s = NULL;
    sq_test_sh(&pid_s, "'%s' serve --model '%s' --port 0 --chat-template chatml --quiet > '%s' 2>/dev/null & echo $!",
               server, model, port_file);
    pid_t pid = pid_s ? (pid_t)atol(pid_s) : 0;
    free(pid_s);
    REQUIRE(pid > 0);
    int port = 0;
    for (int i = 0; i < 300 && !port; i++) {
        char *s = slurp(port_file);
        const char *p = s ? strstr(s, "127.0.0.1:") : NULL;
        if (p) port = atoi(p + 10);
        free(s);
        if (!port) usleep(20000);
    }
    if (!port) {
        kill(pid, SIGKILL);
        REQUIRE(port > 0);
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1#stories260K.gguf", port);
    char *out = tmp_path("s.jsonl"), *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' filter solvable --model '%s' --in '%s' --out '%s' --keep-unknown --max-tokens %d 2>&1",
                        sq_test_cli(), url, in, out, max_tokens);
    CHECKF(rc == 0, "rc %d: %s", rc, msg ? msg : "");
    const char *line = msg ? strstr(msg, "verdicts this run:") : NULL;
    printf("  also stories260K as the Fig-11 judge, %d GSM8K questions: %.*s\n", n,
           line ? (int)strcspn(line, "\n") : 4, line ? line : "none");
    free(msg);
    /* every record is there with its reply; count what the official rule would keep */
    sq_jsonl_reader *r;
    sq_err e;
    REQUIRE(sq_jsonl_open(&r, out, 0, &e) == 0);
    cJSON *rec;
    int got = 0, official = 0;
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        const char *jr = sq_rec_str(rec, "judge_reply"), *v = sq_rec_str(rec, "verdict");
        CHECK(jr && v);
        if (jr) official += sq_reply_verdict_official(jr, strlen(jr));
        got++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    CHECK_EQ_INT(got, n);
    printf("  also   (the official rule would keep %d of %d)\n", official, n);
    /* the difficulty judge through the same server */
    sq_backend_opts bo;
    sq_backend_opts_default(&bo);
    sq_backend *b = NULL;
    REQUIRE(sq_pipeline_backend_open(&b, url, &bo, &e) == 0);
    sq_difficulty_judge_opts o;
    sq_difficulty_judge_opts_default(&o);
    char *dout = tmp_path("d.jsonl");
    o.stage.in = in;
    o.stage.out = dout;
    o.keep_unknown = 1;
    o.params.max_tokens = max_tokens;
    sq_stage_counts c;
    int saved = sq_progress_is_quiet();
    sq_progress_set_quiet(1);
    rc = sq_difficulty_judge_run(b, &o, &c, &e);
    sq_progress_set_quiet(saved);
    sq_backend_close(b);
    CHECKF(rc == 0, "%s", e.msg);
    CHECK_EQ_INT(c.kept, n);
    int hist[6] = {0};
    REQUIRE(sq_jsonl_open(&r, dout, 0, &e) == 0);
    while (sq_jsonl_next(r, &rec, &e) == 1) {
        double v = -1;
        sq_rec_num(rec, "difficulty_rating", &v);
        if (v >= 0 && v <= 5) hist[(int)v]++;
        cJSON_Delete(rec);
    }
    sq_jsonl_close(r);
    printf("  also stories260K as the Fig-12 judge: %d unparsable, ratings 1-5: %d %d %d %d %d\n", hist[0], hist[1],
           hist[2], hist[3], hist[4], hist[5]);
    CHECK_EQ_INT(hist[0] + hist[1] + hist[2] + hist[3] + hist[4] + hist[5], n);
    kill(pid, SIGTERM);
    sq_test_sh(NULL, "sleep 0.2; kill -9 %d 2>/dev/null", (int)pid);
    free(in);
    free(out);
    free(dout);
    free(port_file);
}

/* ---- empty and garbage replies -------------------------------------------------------- */

/* A backend whose replies are what a broken server or model sends: nothing at all (no
 * choice), an empty text, bytes that are not UTF-8, text without any verdict or JSON. */
typedef struct junk_backend {
    sq_backend base;
} junk_backend;

static int junk_generate(sq_backend *b, const sq_gen_request *reqs, int n, sq_gen_callback cb, void *user, sq_err *e) {
    static const char *texts[] = {"", "\xff\xfe\x00garbage", "I like turtles.", "{\"difficulty\": }", "```\n\n```"};
    for (int i = 0; i < n; i++) {
        int k = (int)(strtol(reqs[i].id + 1, NULL, 10) % 6);
        sq_gen_choice c = {.text = k < 5 ? texts[k] : NULL, .finish_reason = "stop"};
        sq_gen_result r = {.id = reqs[i].id, .ok = 1, .choices = &c, .n_choices = k == 5 ? 0 : 1};
        if (cb(user, i, &r)) return sq_fail(e, SQ_EINTR, "stopped");
    }
    return 0;
}

static void junk_close(sq_backend *b) { (void)b; }

SQ_TEST(judge_stages_settle_empty_and_garbage_replies) {
    case_dir();
    static const struct sq_backend_ops ops = {junk_generate, junk_close};
    junk_backend jb = {{&ops, "junk"}};
    char *in = tmp_path("j.jsonl"), *o1 = tmp_path("j1.jsonl"), *o2 = tmp_path("j2.jsonl");
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 30; i++) fprintf(f, "{\"id\":\"j%02d\",\"query\":\"What is %d + 1?\"}\n", i, i);
    fclose(f);
    sq_progress_set_quiet(1);
    sq_filter_solvable_opts so;
    sq_filter_solvable_opts_default(&so);
    so.stage.in = in;
    so.stage.out = o1;
    sq_stage_counts c;
    sq_err e;
    REQUIRE(sq_filter_solvable_run(&jb.base, &so, &c, &e) == 0);
    CHECK_EQ_INT(c.kept, 0);
    CHECK_EQ_INT(c.dropped, 30);
    char *d1 = tmp_path("j1.dropped.jsonl");
    CHECK_EQ_INT(count_lines(d1, "no_verdict"), 30);
    check_each_id_once(in, o1, d1, __LINE__);
    sq_difficulty_judge_opts dj;
    sq_difficulty_judge_opts_default(&dj);
    dj.stage.in = in;
    dj.stage.out = o2;
    dj.keep_unknown = 1;
    REQUIRE(sq_difficulty_judge_run(&jb.base, &dj, &c, &e) == 0);
    CHECK_EQ_INT(c.kept, 30);
    CHECK_EQ_INT(count_lines(o2, "\"difficulty_rating\":0"), 30);
    free(d1);
    free(in);
    free(o1);
    free(o2);
}

/* In process, a model without a chat template cannot take the chat turn: each request fails
 * (named in the failed file, exit 1, nothing lost); --raw-prompt sends the text as it is. */
SQ_TEST(filter_solvable_in_process_raw_prompt) {
    case_dir();
    const char *model = sq_test_asset("models/stories260K.gguf");
    if (!model) SKIP("../shared/assets not present");
    char *in = tmp_path("r.jsonl"), *out = tmp_path("ro.jsonl"), *failed = tmp_path("rf.jsonl");
    FILE *f = fopen(in, "w");
    fputs("{\"id\":\"a\",\"query\":\"Tom has 3 apples. How many?\"}\n{\"id\":\"b\",\"query\":\"What is 2+2?\"}\n", f);
    fclose(f);
    char *msg = NULL;
    int rc = sq_test_sh(&msg, "'%s' filter solvable --model '%s' --in '%s' --out '%s' --failed '%s' --max-tokens 8 2>&1",
                        sq_test_cli(), model, in, out, failed);
    CHECKF(rc == 1 && msg && strstr(msg, "2 requests failed"), "rc %d: %s", rc, msg ? msg : "");
    CHECK_EQ_INT(count_lines(failed, NULL), 2);
    free(msg);
    msg = NULL;
    rc = sq_test_sh(&msg, "'%s' filter solvable --model '%s' --in '%s' --out '%s' --max-tokens 8 --raw-prompt --keep-unknown 2>&1",
                    sq_test_cli(), model, in, out);
    CHECKF(rc == 0 && msg && strstr(msg, "2 in, 2 kept"), "rc %d: %s", rc, msg ? msg : "");
    CHECK_EQ_INT(count_lines(out, "\"judge_reply\""), 2);
    free(msg);
    free(in);
    free(out);
    free(failed);
}
