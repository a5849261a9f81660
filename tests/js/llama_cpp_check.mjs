// Loads a binarylm GGUF export with llama.cpp (through node-llama-cpp's prebuilt CPU binary)
// and reports what it computes. The checks are made by the Rust test (tests/e2e_export.rs).
//
// Usage: BINARYLM_LLAMA_CPP=DIR node llama_cpp_check.mjs REQUEST.json   (a JSON report on
// stdout), DIR being where scripts/setup.sh installed node-llama-cpp (DIR/node_modules).
// REQUEST: {"model": path to model.gguf, "texts": [str], "prompts": [{"text", "max_new_tokens"}]}
// REPORT:  {"ids": [[int]] per text (special-token spellings parsed, no BOS added),
//           "top1": [[int]] per text: llama.cpp's most likely next token after each token,
//           "generated": [[int]] per prompt: greedy continuation (stopping after an
//                        end-of-generation token, which is included)}
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.BINARYLM_LLAMA_CPP;
if (!dir) throw new Error("BINARYLM_LLAMA_CPP is not set (scripts/env.sh sets it)");
const entry = join(dir, "node_modules", "node-llama-cpp", "dist", "index.js");
const { getLlama } = await import(pathToFileURL(entry).href);

const req = JSON.parse(readFileSync(process.argv[2], "utf8"));
// The CPU build that ships prebuilt; never compile, never use a GPU.
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: req.model });
const context = await model.createContext({ contextSize: model.trainContextSize, batchSize: model.trainContextSize, threads: 1 });
const greedy = { generateNext: { token: true, options: { temperature: 0 } } };

const ids = req.texts.map((t) => model.tokenize(t, true));
const sequence = context.getSequence();
const top1 = [];
for (const tokens of ids) {
  await sequence.clearHistory();
  const out = await sequence.controlledEvaluate(tokens.map((t) => [t, greedy]));
  top1.push(out.map((o) => o.next.token));
}

const generated = [];
for (const p of req.prompts) {
  await sequence.clearHistory();
  let tokens = model.tokenize(p.text, true);
  const made = [];
  while (made.length < p.max_new_tokens) {
    const out = await sequence.controlledEvaluate(tokens.map((t, i) => (i === tokens.length - 1 ? [t, greedy] : t)));
    const next = out[tokens.length - 1].next.token;
    made.push(next);
    if (model.isEogToken(next)) break;
    tokens = [next];
  }
  generated.push(made);
}
process.stdout.write(JSON.stringify({ ids, top1, generated }));
await context.dispose();
await model.dispose();
