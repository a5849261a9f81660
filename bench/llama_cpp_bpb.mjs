// llama.cpp on a binarylm GGUF export: bits per byte on a tokenizer stage's val split, scored as
// binarylm's eval and quantize stages score it (each document after <|eos|>, every token
// predicted once, in windows of the model's context whose first token is context only), and
// greedy decode tokens/s.
//
//   BINARYLM_LLAMA_CPP=DIR node bench/llama_cpp_bpb.mjs MODEL.gguf TOKENIZER_ARTIFACT_DIR \
//       [decode_tokens] [rounds] [threads]
//
// Prints one JSON line: {"bits_per_byte", "tokens", "bytes", "tokens_per_s": [per round]}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modelPath, tokDir, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2);
const entry = join(process.env.BINARYLM_LLAMA_CPP, "node_modules", "node-llama-cpp", "dist", "index.js");
const { getLlama } = await import(pathToFileURL(entry).href);

// The val split's token shards (stages/tokenizer/src/shards.rs): u16 or u32 ids, each document
// followed by <|eos|>; u64 document offsets plus the total.
const meta = JSON.parse(readFileSync(join(tokDir, "shards.json"), "utf8"));
const raw = readFileSync(join(tokDir, "val.bin"));
const ids = meta.dtype === "u16"
  ? new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2)
  : new Uint32Array(raw.buffer, raw.byteOffset, raw.length / 4);
const docsRaw = readFileSync(join(tokDir, "val.docs"));
const offsets = new BigUint64Array(docsRaw.buffer, docsRaw.byteOffset, docsRaw.length / 8);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const block = model.trainContextSize;
const context = await model.createContext({ contextSize: block, batchSize: block, threads });
const sequence = context.getSequence();

let nll = 0;
let predicted = 0;
for (let d = 0; d + 1 < offsets.length; d++) {
  const start = Number(offsets[d]);
  const end = Number(offsets[d + 1]) - 1; // without the trailing <|eos|>
  const doc = [meta.eos_id, ...ids.subarray(start, end)];
  for (let s = 0; s + 1 < doc.length; ) {
    const e = Math.min(s + block, doc.length - 1);
    await sequence.clearHistory();
    const input = [];
    for (let p = s; p < e; p++) {
      input.push([doc[p], { generateNext: { logits: true } }]);
    }
    const out = await sequence.controlledEvaluate(input);
    for (let p = s; p < e; p++) {
      const next = out[p - s].next;
      // The raw logits of the whole vocabulary: log-softmax here, in f64.
      const values = [...next.logits.values()];
      const max = Math.max(...values);
      const lse = max + Math.log(values.reduce((sum, v) => sum + Math.exp(v - max), 0));
      nll -= next.logits.get(doc[p + 1]) - lse;
      predicted++;
    }
    s = e;
  }
}
const bytes = meta.splits.val.bytes;

console.log(JSON.stringify({ bits_per_byte: nll / bytes / Math.LN2, tokens: predicted, bytes }));
await context.dispose();
await model.dispose();
