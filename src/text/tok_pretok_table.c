/* The GGUF pre-tokenizers: every tokenizer.ggml.pre name llama.cpp accepts for a byte-level
 * BPE vocabulary, the split steps it runs for it, and what else the name changes (whole-word
 * lookup before merging, BOS by default). The patterns are written in llama.cpp's dialect
 * (see tok_pretok_llama.c for what \p{..} means there); each list is applied in order, every
 * step re-splitting the pieces of the one before, matches and the text between them alike.
 * Non-ASCII characters in patterns are written \x{..} so no editor can normalise them. */
#include <string.h>

#include "tok_internal.h"

/* Contractions with either case of their letters: llama.cpp's spelling of (?i:'s|...). */
#define CONTR "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define WORD "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
#define PUNCT_NL " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
#define SPACES "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define LLAMA3 CONTR "|" WORD "|\\p{N}{1,3}|" PUNCT_NL "|" SPACES
#define QWEN2 CONTR "|" WORD "|\\p{N}|" PUNCT_NL "|" SPACES
/* "upper then lower" words without case classes: a letter that is not a-z, then letters
 * that are not A-Z (outside ASCII every letter is both, as in llama.cpp) */
#define UP(L) "(?:(?=[" L "])[^a-z])"
#define LO(L) "(?:(?=[" L "])[^A-Z])"
#define CASED(L, tail)                                                                                 \
    "[^\\r\\n\\p{L}\\p{N}]?" UP(L) "*" LO(L) "+" tail "|[^\\r\\n\\p{L}\\p{N}]?" UP(L) "+" LO(L) "*" tail
#define CJK_KANA "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
#define ASCII_PUNCT "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]"
#define PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

static const char *const p_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL};
static const char *const p_gpt2[] = {GPT2, NULL};
static const char *const p_starcoder[] = {"\\p{N}", GPT2, NULL};
static const char *const p_llama3[] = {LLAMA3, NULL};
static const char *const p_qwen2[] = {QWEN2, NULL};
static const char *const p_jais2[] = {CONTR "|" WORD "|\\p{N}{1,3}|" PUNCT_NL "|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|"
                                      "\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|"
                                      "\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
                                      NULL};
static const char *const p_deepseek_llm[] = {
    "[\\r\\n]",
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}"
    "\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}"
    "\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "\\s+$",
    "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
    "\\p{N}+",
    NULL};
static const char *const p_deepseek_coder[] = {
    "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}", NULL};
static const char *const p_deepseek3[] = {
    "\\p{N}{1,3}", CJK_KANA,
    ASCII_PUNCT "[A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|" SPACES, NULL};
static const char *const p_spark2_5[] = {
    "\\p{N}{1,3}", CJK_KANA,
    ASCII_PUNCT "[A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}", NULL};
static const char *const p_youtu[] = {
    "[\\x{AC00}-\\x{D7A3}\\x{3131}-\\x{318E}]+|[\\x{FF01}\\x{2026}\\x{201C}\\x{201D}\\x{2018}\\x{2019}\\x{2014}\\x{FF1A}"
    "\\x{FF1B}\\x{FF0C}\\x{3001}-\\x{303F}\\x{FE30}-\\x{FE4F}]+|[\\x{3105}-\\x{312F}]+|" CJK_KANA,
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" CONTR
    "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" CONTR
    "?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" SPACES,
    NULL};
static const char *const p_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]", NULL};
static const char *const p_qwen35[] = {
    CONTR "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|" SPACES, NULL};
static const char *const p_poro[] = {PORO, NULL};
static const char *const p_viking[] = {PORO, "\\p{N}", NULL};
static const char *const p_tekken[] = {CASED("\\p{L}", "") "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" SPACES, NULL};
static const char *const p_chameleon[] = {"<sentinel:[0-9]+>",     "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                                          "([\\t\\n]|    |  )",     "\\p{N}",
                                          "[\\p{P}!-/:-@\\[-`{-~]", GPT2,
                                          NULL};
static const char *const p_gpt4o[] = {
    CASED("\\p{L}", CONTR "?") "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" SPACES, NULL};
static const char *const p_granite_multi[] = {
    CASED("\\p{L}\\p{M}", CONTR "?") "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" SPACES, NULL};
static const char *const p_tiny_aya[] = {
    "\\p{Digits3}",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" CONTR
    "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" CONTR
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|" SPACES,
    NULL};
/* kimi-k2: Han runs alone, words of other letters with an optional contraction */
static const char *const p_kimi_k2[] = {
    "\\p{Han}+|[^\\r\\n\\p{L}\\p{N}]?\\p{Lnh}+" CONTR "?|\\p{N}{1,3}|" PUNCT_NL "|" SPACES, NULL};
static const char *const p_superbpe[] = {"\\p{N}+", "(?=(\\d{3})+(?!\\d))", NULL};
static const char *const p_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|" WORD "|\\p{N}|" PUNCT_NL "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+", NULL};
static const char *const p_seed_coder[] = {CONTR "|" WORD "|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|" SPACES, NULL};
static const char *const p_ufakzeka[] = {WORD "|\\p{N}|" PUNCT_NL "|" SPACES, NULL};
static const char *const p_afmoe[] = {
    "\\p{Digits3}",
    "[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{8C48}-\\x{FAFF}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}\\x{FF65}-\\x{FF9F}"
    "\\x{2F00}-\\x{2FDF}\\x{E40}-\\x{E7F}\\x{E80}-\\x{EFF}\\x{1780}-\\x{17FF}\\x{1000}-\\x{109F}\\x{AA60}-\\x{AA7F}"
    "\\x{A9E0}-\\x{A9FF}\\x{AC00}-\\x{D7AF}\\x{1100}-\\x{11FF}]+",
    ASCII_PUNCT "[A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|" SPACES, NULL};
static const char *const p_laguna[] = {"[^\\n]+|[\\n]+", QWEN2, NULL};
static const char *const p_exaone_moe[] = {
    CONTR "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|"
          "\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const p_lines[] = {"[^\\n]+|[\\n]+", NULL};
static const char *const p_minicpm5[] = {
    "\\p{N}{1,3}", CONTR "|" WORD "|\\p{N}+|" PUNCT_NL "|" SPACES, NULL};

enum { IGN = TOKPRE_IGNORE_MERGES, BOS = TOKPRE_ADD_BOS };

static const tok_gguf_pre table[] = {
    {"|default", p_default, 0},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|jina-v1-en|"
     "jina-v2-code|roberta-bpe|mpt|olmo|jais|trillion|granite-docling|exaone4",
     p_gpt2, 0},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", p_llama3, IGN | BOS},
    {"dbrx|smaug-bpe", p_llama3, 0},
    {"chatglm-bpe", p_llama3, TOKPRE_NO_BOS},
    {"glm4|glm5", p_llama3, TOKPRE_NO_BOS | IGN},
    {"jais-2", p_jais2, 0},
    {"minicpm5", p_minicpm5, IGN},
    {"deepseek-llm", p_deepseek_llm, 0},
    {"deepseek-coder", p_deepseek_coder, 0},
    {"deepseek-v3|hunyuan-dense|hy_v4|joyai-llm", p_deepseek3, 0},
    {"spark2_5", p_spark2_5, 0},
    {"youtu", p_youtu, IGN},
    {"falcon", p_falcon, 0},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|mellum2", p_starcoder, 0},
    {"qwen2|deepseek-r1-qwen|kormo|f2llmv2|megrez|stablelm2|hunyuan|solar-open|grok-2", p_qwen2, 0},
    {"qwen35", p_qwen35, 0},
    {"poro-chat|bloom|gpt3-finnish", p_poro, 0},
    {"viking", p_viking, 0},
    {"tekken", p_tekken, IGN | BOS},
    {"chameleon", p_chameleon, BOS},
    {"gpt-4o|llama4|kanana2|talkie|minimax-m2", p_gpt4o, 0},
    {"granite-embed-multi-97m", p_granite_multi, IGN},
    {"tiny_aya|cohere2moe", p_tiny_aya, 0},
    {"kimi-k2", p_kimi_k2, TOKPRE_HAN},
    {"superbpe", p_superbpe, 0},
    {"bailingmoe|bailingmoe2|llada-moe", p_bailingmoe, 0},
    {"seed-coder", p_seed_coder, 0},
    {"ufakzeka", p_ufakzeka, 0},
    {"afmoe", p_afmoe, 0},
    {"laguna", p_laguna, 0},
    {"exaone-moe", p_exaone_moe, 0},
    {"gemma4|granite-embed-multi-311m|sarvam-moe", p_lines, TOKPRE_RAW},
};

static int name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, name, n)) return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

const tok_gguf_pre *tok_gguf_pre_find(const char *name) {
    for (size_t i = 0; i < SQ_ARRAY_LEN(table); i++)
        if (name_in(table[i].names, name)) return &table[i];
    return NULL;
}

const tok_gguf_pre *tok_gguf_pre_all(size_t *n) {
    *n = SQ_ARRAY_LEN(table);
    return table;
}

int tok_gguf_pre_apply(sq_tokenizer *t, const tok_gguf_pre *p, sq_err *e) {
    t->llama_han = (p->flags & TOKPRE_HAN) != 0;
    t->ignore_merges = (p->flags & TOKPRE_IGNORE_MERGES) != 0;
    int rc = 0;
    for (size_t i = 0; p->patterns[i] && !rc; i++) rc = tok_add_llama_split(t, p->patterns[i], e);
    return rc;
}
