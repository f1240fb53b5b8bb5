#!/usr/bin/env python3
"""Writes fuzz/regressions/<harness>/hand-*: the bad inputs of issue 10 found by hand
(crashes, "internal error" exits, overflows), so ctest's replay of every harness
(tests/fuzz) keeps them refused in one line. Inputs libFuzzer finds are added next to them
as they are fixed (named by libFuzzer: crash-<sha1>, timeout-<sha1>, ...).

Run from anywhere: python3 fuzz/make_regressions.py (rewrites only the hand-* files)."""
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
SEP = b"\nPFSPLIT\n"  # fuzz/checkpoint.cpp's file separator


def put(harness, name, data):
    d = os.path.join(ROOT, "regressions", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "hand-" + name), "wb") as f:
        f.write(data)


def preset_model(**over):
    with open(os.path.join(ROOT, "..", "configs", "models", "tiny.json")) as f:
        text = f.read()
    for k, v in over.items():  # textual, so values json cannot hold (1e400) survive
        obj = json.loads(text)
        old = json.dumps(obj[k]) if k in obj else None
        assert old is not None, k
        text = text.replace('"%s": %s' % (k, old), '"%s": %s' % (k, v), 1)
    return text


def layout(**over):
    with open(os.path.join(ROOT, "..", "configs", "layouts", "seed-pp16-ep32-dp4.json")) as f:
        obj = json.load(f)
    obj.pop("stage_layers", None)
    text = json.dumps(obj, indent=1)
    for k, v in over.items():
        text = text.replace('"%s": %s' % (k, json.dumps(obj[k])), '"%s": %s' % (k, v), 1)
    return text


def safetensors(header, data=b"", raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def token_file(n_docs, n_tokens, doc_starts=(0,), tokens=(1, 2, 3), vocab=256, token_bytes=2, fix_sum=True):
    body = b"".join(struct.pack("<Q", s) for s in doc_starts)
    body += b"".join(struct.pack("<H" if token_bytes == 2 else "<I", t) for t in tokens)
    header = b"PFTOKENS" + struct.pack("<IIII", 1, vocab, token_bytes, 0) + struct.pack("<QQ", n_docs, n_tokens)
    h = 0xCBF29CE484222325
    for b in body:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return bytes([1 if fix_sum else 0]) + header + struct.pack("<Q", h) + body


# --- model configs: numbers a double cannot hold, wrong types, overflowing sizes ---------
put("model_config", "hidden-size-1e400.json", preset_model(hidden_size="1e400"))
put("model_config", "hidden-size-negative.json", preset_model(hidden_size="-64"))
put("model_config", "vocab-2pow63.json", preset_model(vocab_size="9223372036854775808"))
put("model_config", "layers-string.json", preset_model(num_hidden_layers='"3"'))
put("model_config", "experts-huge.json", preset_model(n_routed_experts="4611686018427387904"))
put("model_config", "eps-nan-text.json", preset_model(rms_norm_eps="NaN"))
put("model_config", "hf-null-everything.json",
    json.dumps({"model_type": "deepseek_v3", "hidden_size": None, "q_lora_rank": None}))
put("model_config", "array.json", "[1, 2, 3]")
put("model_config", "truncated.json", preset_model()[:200])

# --- layouts: the overflows of issue 10 (sim/config.cpp) ---------------------------------
put("layout", "pp-tp-2pow32.json", layout(pp="4294967296", tp="4294967296"))
put("layout", "micro-batch-2pow62.json", layout(micro_batch_size="4611686018427387904"))
put("layout", "global-batch-2pow63m1.json", layout(global_batch_size="9223372036854775807"))
put("layout", "seq-len-1e400.json", layout(seq_len="1e400"))
put("layout", "dp-negative.json", layout(dp="-128"))
put("layout", "ep-zero.json", layout(ep="0"))

# --- hardware and faults: numbers too large, negative and zero divisors -----------------
with open(os.path.join(ROOT, "..", "configs", "hardware", "h800-2048.json")) as f:
    hw = f.read()
hw_obj = json.loads(hw)
for key in [k for k, v in hw_obj.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:6]:
    put("hardware", "%s-zero.json" % key, hw.replace('"%s": %s' % (key, json.dumps(hw_obj[key])), '"%s": 0' % key, 1))
    put("hardware", "%s-1e400.json" % key, hw.replace('"%s": %s' % (key, json.dumps(hw_obj[key])), '"%s": 1e400' % key, 1))
with open(os.path.join(ROOT, "..", "configs", "faults", "deepseek-v3-2048.json")) as f:
    fl = f.read()
put("faults", "not-an-object.json", "\"faults\"")
put("faults", "truncated.json", fl[: len(fl) // 2])
put("faults", "numbers-1e400.json", fl.replace("0.", "1e400", 1) if "0." in fl else fl)

# --- safetensors: offsets and headers of issue 10 (safetensors.cpp) ----------------------
i64max = 2**63 - 1
put("safetensors", "offsets-int64max.st",
    safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [i64max - 3, i64max]}}, b"\0" * 4))
put("safetensors", "offsets-negative.st",
    safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b"\0" * 4))
put("safetensors", "offsets-past-data.st",
    safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 4))
put("safetensors", "offsets-reversed.st",
    safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4))
put("safetensors", "size-not-numel.st",
    safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4))
put("safetensors", "shape-overflow.st",
    safetensors({"w": {"dtype": "F32", "shape": [2**32, 2**32, 4], "data_offsets": [0, 0]}}))
put("safetensors", "missing-dtype.st", safetensors({"w": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
put("safetensors", "offsets-strings.st",
    safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}, b"\0" * 4))
put("safetensors", "header-array.st", safetensors(None, b"", raw_header=b"[1,2]"))
put("safetensors", "metadata-not-strings.st",
    safetensors({"__metadata__": {"step": 3}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
put("safetensors", "header-length-huge.st", struct.pack("<Q", 2**63) + b"{}")
put("safetensors", "short.st", b"\x05\0\0")

# --- token files: size arithmetic of issue 10 (data.cpp) ---------------------------------
put("tokens", "n-docs-2pow61p1.tok", token_file(2**61 + 1, 3))
put("tokens", "n-tokens-huge.tok", token_file(1, 2**62))
put("tokens", "doc-starts-descending.tok", token_file(2, 3, doc_starts=(0, 2**40), tokens=(1, 2, 3)))
put("tokens", "token-bytes-3.tok", token_file(1, 3, token_bytes=3))
put("tokens", "token-above-vocab.tok", token_file(1, 3, tokens=(1, 300, 2), vocab=256))
put("tokens", "bad-checksum.tok", token_file(1, 3, fix_sum=False)[:-1] + b"\x07")

# --- checkpoints: trainer.json and manifests of issue 10 (checkpoint.cpp, trainer.cpp) ---
# Control byte 0x01: the harness writes a valid manifest for the pieces, so the loader's
# own checks (not the checksum) are what refuses them.
st_ok = safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
for name, tj in [("trainer-bad-json", b"{\"step\": 3,"),
                 ("trainer-array", b"[]"),
                 ("trainer-missing-keys", b"{\"step\": 3}"),
                 ("trainer-step-string", b"{\"step\": \"3\", \"options\": {}}"),
                 ("trainer-step-negative", b"{\"step\": -1, \"options\": {\"data\": \"synthetic\"}}")]:
    put("checkpoint", name, b"\x01" + st_ok + SEP + st_ok + SEP + tj)
put("checkpoint", "manifest-crlf", b"\x00" + st_ok + SEP + st_ok + SEP + b"{}" + SEP +
    b"@sha:0  model.safetensors\r\n@sha:1  optimizer.safetensors\r\n@sha:2  trainer.json\r\n")
put("checkpoint", "manifest-empty", b"\x00" + st_ok + SEP + st_ok + SEP + b"{}" + SEP)
put("checkpoint", "manifest-missing-file", b"\x00" + st_ok + SEP + st_ok + SEP + b"{}" + SEP +
    b"@sha:0  model.safetensors\n@sha:1  optimizer.safetensors\n@sha:2  trainer.json\n" +
    b"0000000000000000000000000000000000000000000000000000000000000000  absent.bin\n")
put("checkpoint", "manifest-path-escape", b"\x00" + st_ok + SEP + st_ok + SEP + b"{}" + SEP +
    b"@sha:0  ../../../../etc/passwd\n")
