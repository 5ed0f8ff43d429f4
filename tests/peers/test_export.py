"""`scalequest export` read by HF datasets: load_dataset("json", data_files=...) takes the file as
it is (one split, exactly the columns id, query, response, all strings, every line), which is
what DART-Math's trainer reads (its query/response fields); --keep all expands into ID, ID#1, ...;
the provenance side file holds one line per exported line with the same ids."""
import json
import os

import harness

try:
    import datasets
except ImportError as ex:
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()


def main():
    tmp = harness.tmpdir()
    src = os.path.join(tmp, "reward.jsonl")
    recs = [
        {"id": "q0", "query": "What is 2 + 3?", "responses": ["5. The answer is 5.", "\\boxed{5}"],
         "response": "\\boxed{5}", "extracted": "5", "reward": 1.5, "difficulty": 0.3,
         "kept": [{"index": 1, "response": "\\boxed{5}", "answer": "5", "reward": 1.5},
                  {"index": 0, "response": "5. The answer is 5.", "answer": "5", "reward": 0.5}]},
        {"id": "q1", "query": "Écris 7×8 — en \"LaTeX\": $7\\times 8$?\nLigne 2", "responses": ["\\boxed{56}"],
         "response": "7 \\times 8 = 56\n\n\\boxed{56} ✓", "extracted": "56", "reward": -0.25,
         "kept": [{"index": 0, "response": "7 \\times 8 = 56\n\n\\boxed{56} ✓", "answer": "56", "reward": -0.25}]},
        {"id": "q2", "query": "No kept list here", "response": "The answer is 1.", "source": "qgen"},
    ]
    with open(src, "w") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out, prov = os.path.join(tmp, "sft.jsonl"), os.path.join(tmp, "sft.provenance.jsonl")
    harness.run([harness.CLI, "export", "--in", src, "--out", out, "--quiet"])
    ds = datasets.load_dataset("json", data_files=out, split="train", cache_dir=os.path.join(tmp, "cache"))
    harness.check("columns", sorted(ds.column_names) == ["id", "query", "response"], str(ds.column_names))
    harness.check("all_strings", all(str(ds.features[c].dtype) == "string" for c in ds.column_names), str(ds.features))
    harness.check("ids", ds["id"] == ["q0", "q0#1", "q1", "q2"], str(ds["id"]))
    harness.check("texts_round_trip", ds[2]["query"] == recs[1]["query"] and ds[2]["response"] == recs[1]["response"]
                  and ds[1]["response"] == recs[0]["kept"][1]["response"], str(ds[2]))
    pv = datasets.load_dataset("json", data_files=prov, split="train", cache_dir=os.path.join(tmp, "cache2"))
    harness.check("provenance_ids", pv["id"] == ds["id"] and pv["source_id"] == ["q0", "q0", "q1", "q2"], str(pv["id"]))
    harness.check("provenance_fields", pv[0]["difficulty"] == 0.3 and pv[1]["kept_reward"] == 0.5
                  and "query" not in pv.column_names and "responses" not in pv.column_names, str(pv.column_names))
    harness.finish()


main()
