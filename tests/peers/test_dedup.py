"""dedup against datasketch (MinHash, MinHashLSH; scheme "affine32", its 2.0.0 default):
given our shingle hashes and permutations, datasketch's signatures equal ours value for value;
its Jaccard estimates agree with the true Jaccard of the shingle sets within its tolerance;
its _optimal_param chooses our bands and rows; and on a labelled set (40 real GSM8K test
questions, a hand-written paraphrase of each, and 40 other GSM8K questions as controls) its
LSH, run first-occurrence-keeps, gives exactly our clusters. Our shingles are also rebuilt
here from the documented normal form, so both sides shingle the same text."""
import json
import os
import re

from harness import CLI, ROOT, asset, check, finish, run, skip, tmpdir

try:
    import numpy as np
    from datasketch import MinHash, MinHashLSH
    from datasketch.lsh import _optimal_param
except ImportError:
    MinHash = None


def normal_form(text):
    words = re.findall(rb"[a-z0-9\x80-\xff]+", text.encode("utf-8").lower())
    return b" ".join(words)


def word_shingles(norm, n):
    w = norm.split(b" ") if norm else []
    if not w:
        return []
    if len(w) < n:
        return [norm]
    return [b" ".join(w[i:i + n]) for i in range(len(w) - n + 1)]


def main():
    if MinHash is None:
        skip("dedup", "datasketch is not installed in the peer Python")
        return
    gsm = asset("data/gsm8k_test.jsonl")
    if gsm is None:
        skip("dedup", "../shared/assets/data not present")
        return
    if not os.path.exists(CLI):
        skip("dedup", f"{CLI} not built")
        return
    test = [json.loads(line)["question"] for line in open(gsm)]
    paras = [json.loads(line) for line in open(os.path.join(ROOT, "tests", "data", "dedup_paraphrases.jsonl"))]
    # the labelled set: originals, controls, then paraphrases (a paraphrase comes after its original)
    recs, label = [], {}
    for p in paras:
        i = p["gsm8k_test_index"]
        recs.append({"id": f"orig{i}", "query": test[i]})
        label[f"orig{i}"] = f"orig{i}"
    for p in paras:
        j = (p["gsm8k_test_index"] + 16) % len(test)
        recs.append({"id": f"ctrl{j}", "query": test[j]})
        label[f"ctrl{j}"] = f"ctrl{j}"
    for p in paras:
        i = p["gsm8k_test_index"]
        recs.append({"id": f"para{i}", "query": p["paraphrase"]})
        label[f"para{i}"] = f"orig{i}"
    d = tmpdir()
    inp = os.path.join(d, "labelled.jsonl")
    with open(inp, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    bad = []
    for t in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9):
        for npm in (32, 64, 128, 256):
            q = json.loads(run([CLI, "dedup", "--print-params", "--threshold", str(t), "--num-perm", str(npm)]).stdout)
            if (q["bands"], q["rows"]) != _optimal_param(t, npm, 0.5, 0.5):
                bad.append((t, npm, q["bands"], q["rows"], _optimal_param(t, npm, 0.5, 0.5)))
    check("bands_rows_as_datasketch_over_24_settings", not bad, f"{bad}")
    for thr, extra in ((0.6, []), (0.5, ["--ngram", "3"]), (0.7, ["--shingle", "char", "--ngram", "5"])):
        name = f"t{thr}{'_'.join(extra)}"
        params = json.loads(run([CLI, "dedup", "--print-params", "--threshold", str(thr)] + extra).stdout)
        a = np.array(params["a"], dtype=np.uint32)
        b = np.array(params["b"], dtype=np.uint32)
        npm = params["num_perm"]
        check(f"{name}:bands_as_datasketch_chooses",
              _optimal_param(thr, npm, 0.5, 0.5) == (params["bands"], params["rows"]),
              f"ours {params['bands']}x{params['rows']}, datasketch {_optimal_param(thr, npm, 0.5, 0.5)}")
        sig_path = os.path.join(d, f"sig_{name}.jsonl")
        run([CLI, "dedup", "--in", inp, "--signatures", sig_path, "--threshold", str(thr)] + extra)
        sigs = [json.loads(line) for line in open(sig_path)]
        same_shingles = same_sigs = 0
        mh = {}
        for r, s in zip(recs, sigs):
            sh = [x.encode("utf-8") for x in s["shingles"]]
            if params["shingle"] == "word":
                same_shingles += sh == word_shingles(normal_form(r["query"]), params["ngram"])
            else:
                nf = normal_form(r["query"]).decode("utf-8")
                n = params["ngram"]
                ref = [nf] if 0 < len(nf) < n else [nf[i:i + n] for i in range(len(nf) - n + 1)]
                same_shingles += [x.decode("utf-8") for x in sh] == ref
            table = dict(zip(sh, s["hashes"]))
            m = MinHash(num_perm=npm, permutations=(a, b), scheme="affine32", hashfunc=lambda x, t=table: t[x])
            m.update_batch(sh)
            mh[r["id"]] = (m, set(sh))
            same_sigs += [int(v) for v in m.hashvalues] == s["minhash"]
        check(f"{name}:shingles_rebuilt_from_the_normal_form", same_shingles == len(recs),
              f"{same_shingles}/{len(recs)}")
        check(f"{name}:signatures_equal_datasketch", same_sigs == len(recs), f"{same_sigs}/{len(recs)} equal")
        # Jaccard estimates vs the truth, for each original and its paraphrase
        worst = 0.0
        for p in paras:
            i = p["gsm8k_test_index"]
            (m1, s1), (m2, s2) = mh[f"orig{i}"], mh[f"para{i}"]
            true = len(s1 & s2) / len(s1 | s2)
            est = m1.jaccard(m2)
            worst = max(worst, abs(est - true) / max(1e-9, (true * (1 - true) / npm) ** 0.5 + 1 / npm))
        check(f"{name}:jaccard_estimates_within_4_sigma", worst < 4.0, f"worst {worst:.2f} sigma")
        # clusters: datasketch's LSH, first occurrence kept
        lsh = MinHashLSH(num_perm=npm, params=(params["bands"], params["rows"]))
        order = {r["id"]: k for k, r in enumerate(recs)}
        theirs = {}
        for r in recs:
            m = mh[r["id"]][0]
            hit = lsh.query(m) if mh[r["id"]][1] else []
            if hit:
                theirs[r["id"]] = min(hit, key=order.get)
            else:
                if mh[r["id"]][1]:
                    lsh.insert(r["id"], m)
        out = os.path.join(d, f"out_{name}.jsonl")
        run([CLI, "dedup", "--in", inp, "--out", out, "--threshold", str(thr), "--quiet"] + extra)
        ours = {}
        for line in open(out.replace(".jsonl", ".dropped.jsonl")):
            x = json.loads(line)
            ours[x["id"]] = x["duplicate_of"]
        check(f"{name}:clusters_equal_datasketch", ours == theirs,
              f"only ours {set(ours.items()) - set(theirs.items())}, only theirs {set(theirs.items()) - set(ours.items())}")
        tp = sum(1 for k, v in ours.items() if label[k] == v)
        fp = len(ours) - tp
        print(f"  also {name}: {tp}/40 paraphrases found, {fp} wrong merges", flush=True)
        check(f"{name}:no_control_merged", fp == 0, f"{fp} records merged with a question they do not paraphrase")
        if thr == 0.6 and not extra:  # the defaults: tuned to catch most of these paraphrases
            check(f"{name}:default_finds_most_paraphrases", tp >= 30, f"{tp}/40")


main()
finish()
