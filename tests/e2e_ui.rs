//! `binarylm ui` in a real browser: headless Chromium, driven over WebDriver, opens each page
//! against a workspace built by the quickstart manifest (shortened) and the test asserts on
//! what the page rendered. The same workspace then serves the HTTP checks: paths outside the
//! workspace are refused and the UI writes nothing to it.
//!
//! With `BINARYLM_UI_SCREENSHOTS=DIR` the pages are also saved as PNGs (docs/img/ for
//! docs/ui.md); a normal run writes none.

mod common;
#[path = "ui/webdriver.rs"]
mod webdriver;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::SystemTime;

use common::Project;
use serde_json::Value;
use webdriver::Browser;

/// A running `binarylm ui`, stopped when dropped.
struct Ui {
    child: Child,
    url: String,
}

impl Ui {
    fn start(p: &Project, extra: &[&str]) -> Ui {
        let mut args = vec!["ui", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = p
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start binarylm ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the link");
        if line.is_empty() {
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("binarylm ui printed no link:\n{err}");
        }
        Ui {
            child,
            url: line.trim().to_string(),
        }
    }

    /// `127.0.0.1:PORT`.
    fn addr(&self) -> String {
        let rest = self.url.trim_start_matches("http://");
        rest[..rest.find('/').expect("path")].to_string()
    }

    /// A raw HTTP/1.1 GET, so that the path goes out exactly as written (an HTTP client
    /// library would normalise `..` away before sending it).
    fn raw(&self, method: &str, path: &str, host: Option<&str>) -> (u16, String) {
        self.send(method, path, host, "")
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.send("POST", path, None, body)
    }

    fn send(&self, method: &str, path: &str, host: Option<&str>, body: &str) -> (u16, String) {
        let addr = self.addr();
        let mut s = TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            host.unwrap_or(&addr),
            body.len()
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.raw("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        // Chunked bodies carry size lines; the JSON is the part between the outer braces.
        let start = body.find(['{', '[']).expect("json");
        let end = body.rfind(['}', ']']).expect("json");
        serde_json::from_str(&body[start..=end]).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every path under `root` with its size and modification time.
fn tree_state(root: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
            if meta.is_dir() {
                todo.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().ok()));
        }
    }
    out
}

/// The quickstart manifest, shortened to seconds: fewer stories, steps and eval documents.
fn quickstart(p: &Project) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/pipeline.yaml");
    let text = std::fs::read_to_string(src).expect("quickstart manifest");
    let short = text
        .replace("documents: 4000", "documents: 600")
        .replace("steps: 600", "steps: 30")
        .replace("warmup_steps: 50", "warmup_steps: 5")
        .replace("steps: 150", "steps: 20")
        .replace("eval_every: 100", "eval_every: 10\n      log_every: 1")
        .replace("eval_every: 50", "eval_every: 10")
        .replace("eval_batches: 10", "eval_batches: 2")
        .replace("limit: 200", "limit: 20");
    assert_ne!(
        text, short,
        "the quickstart manifest changed: update this test"
    );
    p.write("pipeline.yaml", &short);
}

fn screenshot(b: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("BINARYLM_UI_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        b.screenshot(&dir.join(format!("ui-{name}.png")));
    }
}

#[test]
fn the_ui_shows_the_quickstart_workspace_in_a_browser_and_stays_inside_it() {
    let p = Project::new();
    quickstart(&p);
    let first = p.run(&["run", "pipeline.yaml", "--json"]).ok().json();
    // A second run with another learning rate (two curves to overlay; the data and tokenizer
    // are reused), then an edit after it: the eval stage is now stale, and the UI must say why.
    let text = std::fs::read_to_string(p.file("pipeline.yaml")).expect("manifest");
    let text = text.replace("lr: 0.002", "lr: 0.003");
    p.write("pipeline.yaml", &text);
    let second = p.run(&["run", "pipeline.yaml", "--json"]).ok().json();
    p.write("pipeline.yaml", &text.replace("limit: 20", "limit: 19"));
    let digest_of = |report: &Value| common::stage(report, "base")["digest"].clone();
    let (old_base, new_base) = (digest_of(&first), digest_of(&second));
    assert_ne!(old_base, new_base);

    // Each stage's state as the UI must draw it, from what the command line says: `plan`
    // (up to date or not) and the last run's outcome (ran or reused).
    let plan = p.run(&["plan", "pipeline.yaml", "--json"]).ok().json();
    let outcomes = common::outcomes(&second);
    let expect: BTreeMap<String, String> = plan["stages"]
        .as_array()
        .expect("plan stages")
        .iter()
        .map(|e| {
            let stage = e["stage"].as_str().expect("stage").to_string();
            let state = match (
                e["status"].as_str(),
                outcomes.get(&stage).map(String::as_str),
            ) {
                (Some("cached"), Some("ran")) => "ran",
                (Some("cached"), _) => "cached",
                _ => "stale",
            };
            (stage, state.to_string())
        })
        .collect();
    assert_eq!(expect["scores"], "stale", "{plan}");
    assert_eq!(expect["base"], "ran", "{plan}");
    assert_eq!(expect["corpus"], "cached", "{plan}");
    let scores_show = p.run(&["show", "scores", "--json"]).ok().json();
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(scores_show["path"].as_str().unwrap()).join("results.json"),
        )
        .expect("results.json"),
    )
    .expect("results");

    let base_show = p.run(&["show", "base", "--json"]).ok().json();
    let base_dir = PathBuf::from(base_show["path"].as_str().expect("path"));
    let curve = std::fs::read_to_string(base_dir.join("metrics.jsonl")).expect("curve");
    let lines: Vec<Value> = curve
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    let loss_points = lines.iter().filter(|l| l["loss"].is_number()).count();
    let val_points = lines.iter().filter(|l| l["val_loss"].is_number()).count();
    assert!(
        loss_points >= 20 && val_points >= 3,
        "{loss_points} {val_points}"
    );

    // What the command line says, asked before the UI starts: these commands take the
    // workspace's lock and open its index (they write), the UI must not.
    let typed = "Mia put the key in the box.";
    let cli = p.run(&["tokenize", "tok", typed, "--json"]).ok().json();
    let cli_ids: Vec<Value> = cli["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    // Greedy decoding's first token after a prompt: the inspector's top-1 there must agree.
    let gen = p
        .run(&[
            "generate",
            "base",
            "--prompt",
            "Once",
            "-n",
            "1",
            "--temperature",
            "0",
            "--json",
        ])
        .ok()
        .json();
    let prompt_tokens = gen["prompt_tokens"].as_u64().expect("prompt tokens");
    let greedy = gen["tokens"][0].as_u64().expect("a generated token");

    let ws = p.workspace();
    let before = tree_state(&ws);
    let ui = Ui::start(&p, &["-f", "pipeline.yaml"]);
    assert!(ui.url.starts_with("http://127.0.0.1:"), "{}", ui.url);

    if let Some(b) = Browser::start() {
        // Pipelines: the DAG with every stage and its state, and why `scores` would run.
        b.open(&ui.url, "#/");
        let nodes = b.wait_for(
            "const n = [...document.querySelectorAll('g.node')]; \
             return n.length ? n.map(g => [g.dataset.stage, g.dataset.state]) : null;",
        );
        let nodes: BTreeMap<String, String> = serde_json::from_value(Value::Object(
            nodes
                .as_array()
                .expect("nodes")
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].clone()))
                .collect(),
        ))
        .expect("map");
        assert_eq!(nodes, expect);
        let why = b.eval(
            "return document.querySelector('table.stages tr[data-stage=scores] ul.reasons').textContent;",
        );
        assert!(why.as_str().unwrap().contains("param"), "{why}");
        let runs = b.eval("return document.querySelectorAll('table.runs tr[data-run]').length;");
        assert_eq!(runs, 2);
        screenshot(&b, "pipelines");

        // A training stage: the loss curve has a point per logged step.
        b.open(&format!("{}#/p/0/s/base", ui.url), "#/p/0/s/base");
        let counted = b.eval(
            "const c = s => { const l = document.querySelector(`svg.chart[data-metric=loss] polyline[data-series=\"${s}\"]`); \
             return l ? l.points.numberOfItems : -1; }; return [c('train loss'), c('val loss')];",
        );
        assert_eq!(
            counted,
            serde_json::json!([loss_points, val_points]),
            "{}",
            b.eval("return document.body.innerText.slice(0, 2000);")
        );
        let lr = b.eval("return document.querySelector('svg.chart[data-metric=lr] polyline').points.numberOfItems;");
        assert_eq!(lr, serde_json::json!(loss_points));
        let metric = b.eval("return document.querySelector('table.metrics').textContent;");
        assert!(metric.as_str().unwrap().contains("val_loss ★"), "{metric}");
        screenshot(&b, "stage-base");

        // A data stage: the cleaning funnel, the length histogram and samples.
        b.open(&format!("{}#/p/0/s/corpus", ui.url), "#/p/0/s/corpus");
        let bars = b.eval("return [...document.querySelectorAll('svg.bars')].map(s => s.querySelectorAll('rect').length);");
        let bars = bars.as_array().expect("bars");
        assert_eq!(bars.len(), 2, "{bars:?}");
        assert!(bars.iter().all(|n| n.as_u64().unwrap() >= 2), "{bars:?}");
        let samples = b.eval("return document.querySelectorAll('table.samples tr').length;");
        assert!(samples.as_u64().unwrap() >= 2, "{samples}");
        screenshot(&b, "stage-corpus");

        // The tokenizer: what is typed comes back as the tokenizer's pieces and ids.
        b.open(&format!("{}#/p/0/s/tok", ui.url), "#/p/0/s/tok");
        b.eval(&format!(
            "const t = document.getElementById('tokenize-input'); t.value = {typed:?}; \
             t.dispatchEvent(new Event('input')); return true;"
        ));
        let ids = b.wait_for(
            "const o = document.querySelector('.tokens'); \
             return o.dataset.count ? [...o.querySelectorAll('.tok')].map(t => Number(t.dataset.id)) : null;",
        );
        assert_eq!(ids, Value::Array(cli_ids));
        screenshot(&b, "stage-tok");

        // Eval results as a table: a column per model, a row per task and metric.
        b.open(&format!("{}#/p/0/s/scores", ui.url), "#/p/0/s/scores");
        let table = b.eval(
            "const t = document.querySelector('table.eval'); \
             return [[...t.querySelectorAll('th')].map(x => x.textContent), \
                     [...t.querySelectorAll('tr[data-metric]')].map(r => r.dataset.metric)];",
        );
        let mut header = vec![Value::from("task"), Value::from("metric")];
        header.extend(
            results["models"]
                .as_array()
                .expect("models")
                .iter()
                .cloned(),
        );
        assert_eq!(table[0], Value::Array(header));
        let metrics: Vec<&str> = table[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert!(metrics.contains(&"bits_per_byte"), "{metrics:?}");
        screenshot(&b, "stage-scores");

        // Curves: the model's curve, selectable.
        b.open(&format!("{}#/curves", ui.url), "#/curves");
        let listed = b.eval(
            "return [[...document.querySelectorAll('table.sources input')].map(i => i.dataset.digest), \
             document.querySelectorAll('table.sources input:checked').length];",
        );
        let digests = listed[0].as_array().expect("sources");
        assert!(
            digests.contains(&old_base) && digests.contains(&new_base),
            "{listed}"
        );
        assert_eq!(listed[1], 1, "the newest curve is shown first: {listed}");
        // Both models' curves overlaid, each with a point per logged step.
        let both = format!(
            "#/curves/{},{}",
            new_base.as_str().unwrap(),
            old_base.as_str().unwrap()
        );
        b.open(&format!("{}{both}", ui.url), &both);
        let overlaid = b.wait_for(
            "const l = [...document.querySelectorAll('svg.chart[data-metric=loss] polyline')] \
               .filter(p => p.dataset.series.endsWith('train loss')); \
             return l.length === 2 ? l.map(p => p.points.numberOfItems) : null;",
        );
        assert_eq!(overlaid, serde_json::json!([loss_points, loss_points]));
        screenshot(&b, "curves");

        // The model inspector: attention maps whose rows sum to 1, greedy decoding's choice
        // as the top next token, the logit lens, and the embedding space.
        b.open(
            &format!("{}#/p/0/s/base/inspect", ui.url),
            "#/p/0/s/base/inspect",
        );
        b.wait_for("return document.querySelectorAll('table.topk tr[data-pos]').length > 4;");
        b.wait_for("return document.querySelectorAll('svg.embeddings circle').length > 0;");
        screenshot(&b, "inspector");
        b.eval(
            "const t = document.getElementById('inspect-input'); t.value = 'Once'; \
             t.dispatchEvent(new Event('input')); return true;",
        );
        b.wait_for(&format!(
            "return document.querySelectorAll('table.topk tr[data-pos]').length === {prompt_tokens};"
        ));
        let maps = b.eval(
            "const maps = [...document.querySelectorAll('svg.heatmap')]; let worst = 0; \
             for (const m of maps) { const rows = {}; \
               for (const c of m.querySelectorAll('rect[data-row]')) \
                 rows[c.dataset.row] = (rows[c.dataset.row] || 0) + Number(c.dataset.w); \
               for (const v of Object.values(rows)) worst = Math.max(worst, Math.abs(v - 1)); } \
             return [maps.length, worst];",
        );
        assert_eq!(maps[0], 16, "4 layers × 4 heads: {maps}");
        assert!(
            maps[1].as_f64().unwrap() < 1e-4,
            "an attention row does not sum to 1: {maps}"
        );
        let last = prompt_tokens - 1;
        let top = b.eval(&format!(
            "return Number(document.querySelector('table.topk tr[data-pos=\"{last}\"] .cand').dataset.id);"
        ));
        assert_eq!(
            top,
            serde_json::json!(greedy),
            "top-1 is not what greedy decoding picks"
        );
        let lens = b.eval(
            "const rows = [...document.querySelectorAll('table.lens tr[data-layer]')]; \
             const last = [...rows[rows.length - 1].querySelectorAll('td')].map(c => Number(c.dataset.id)); \
             const top = [...document.querySelectorAll('table.topk tr[data-pos]')].map(r => Number(r.querySelector('.cand').dataset.id)); \
             return [rows.length, JSON.stringify(last) === JSON.stringify(top)];",
        );
        assert_eq!(
            lens,
            serde_json::json!([5, true]),
            "the last lens layer is the model's prediction"
        );
        let circles = b.wait_for(
            "const n = document.querySelectorAll('svg.embeddings circle').length; return n || null;",
        );
        assert_eq!(
            circles, cli["vocab_size"],
            "a point per token of the vocabulary"
        );
        b.eval(
            "const t = document.getElementById('neighbour-input'); t.value = ' the'; \
             t.dispatchEvent(new Event('change')); return true;",
        );
        let near = b.wait_for(
            "const n = document.querySelectorAll('table.neighbours tr[data-id]').length; return n || null;",
        );
        assert_eq!(near, 10);
    }

    // Nothing outside the workspace, whatever the path looks like.
    let digest = base_show["digest"].as_str().expect("digest");
    let (ok, body) = ui.raw(
        "GET",
        &format!("/api/objects/{digest}/files/summary.json"),
        None,
    );
    assert_eq!(ok, 200, "{body}");
    for path in [
        format!("/api/objects/{digest}/files/../../../../../../etc/passwd"),
        format!("/api/objects/{digest}/files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
        format!("/api/objects/{digest}/files/..%2f..%2f..%2fregistry.sled%2fconf"),
        format!("/api/objects/{digest}/files//etc/passwd"),
        "/api/objects/..%2f..%2f..%2fetc/files/passwd".to_string(),
        "/api/logs/..%2f..%2f..%2fetc/passwd".to_string(),
        "/assets/..%2f..%2fCargo.toml".to_string(),
        "/../../../../etc/passwd".to_string(),
    ] {
        let (status, body) = ui.raw("GET", &path, None);
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    // Bad requests name what is wrong.
    let (status, body) = ui.post(
        "/api/pipelines/0/stages/corpus/inspect",
        r#"{"op":"prompt","text":"x"}"#,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no stored model"), "{body}");
    let long = format!(
        r#"{{"op":"prompt","text":"{}"}}"#,
        "Mia went to the park. ".repeat(40)
    );
    let (status, body) = ui.post("/api/pipelines/0/stages/base/inspect", &long);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 64"), "{body}");
    let (status, body) = ui.post("/api/pipelines/0/stages/base/inspect", r#"{"op":"guess"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown variant"), "{body}");
    let (status, body) = ui.post("/api/pipelines/0/stages/nope/tokenize", r#"{"text":"x"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no stage `nope`"), "{body}");
    let (status, _) = ui.raw("GET", "/api/pipelines/7", None);
    assert_eq!(status, 404);

    let (status, _) = ui.raw("GET", "/api/home", Some("evil.example:80"));
    assert_eq!(
        status, 403,
        "a foreign Host header (DNS rebinding) must be refused"
    );
    let (status, _) = ui.raw("DELETE", "/api/home", None);
    assert_eq!(status, 405);

    // The UI wrote nothing to the workspace (the browser visited every page).
    assert_eq!(tree_state(&ws), before, "the UI changed the workspace");

    // A symlink planted in an object that points outside is not followed.
    let secret = p.file("secret.txt");
    std::fs::write(&secret, "root:secret").expect("secret");
    let summary = base_dir.join("summary.json");
    let mut perms = std::fs::metadata(&base_dir).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&base_dir, perms).expect("chmod");
    std::fs::remove_file(&summary).expect("rm");
    std::os::unix::fs::symlink(&secret, &summary).expect("ln");
    let (status, body) = ui.raw(
        "GET",
        &format!("/api/objects/{digest}/files/summary.json"),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("root:secret"), "{body}");
}

/// Off loopback, the UI makes up a token, prints it in its link, and refuses requests without
/// it; a token too short to be secret is bad input.
#[test]
fn off_loopback_every_request_needs_the_token() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: t\nstages:\n  hello: { kind: command, run: 'echo hi > \"$BINARYLM_OUT/x\"' }\n  bad: { kind: command, run: 'echo broken >&2; exit 3' }\n",
    );
    assert_eq!(p.run(&["run", "pipeline.yaml", "--keep-going"]).code, 1);
    let ui = Ui::start(&p, &["--host", "0.0.0.0"]);
    let token = ui
        .url
        .split_once("?token=")
        .expect("token in the link")
        .1
        .to_string();
    assert_eq!(token.len(), 32, "{}", ui.url);
    // Bound to every interface, the link names loopback (a browser can open it).
    assert!(ui.url.starts_with("http://127.0.0.1:"), "{}", ui.url);
    let (status, body) = ui.raw("GET", "/api/home", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"), "{body}");
    let (status, _) = ui.raw("GET", "/api/home?token=0000000000000000", None);
    assert_eq!(status, 401);
    let (status, body) = ui.raw("GET", &format!("/api/home?token={token}"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");
    // A failed stage is `failed`, with its error, and would run again.
    let (status, body) = ui.raw("GET", &format!("/api/pipelines/0?token={token}"), None);
    assert_eq!(status, 200, "{body}");
    let doc: Value =
        serde_json::from_str(&body[body.find('{').unwrap()..=body.rfind('}').unwrap()])
            .expect("json");
    let bad = doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bad")
        .expect("stage bad");
    assert_eq!(bad["state"], "failed", "{bad}");
    assert!(
        bad["last"]["error"].as_str().unwrap().contains("exit"),
        "{bad}"
    );
    assert!(!bad["reasons"].as_array().unwrap().is_empty(), "{bad}");

    let short = p.run(&["ui", "--host", "0.0.0.0", "--token", "abc"]);
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("too short"), "{}", short.stderr);
    let none = Project::new();
    let missing = none.run(&["ui", "--port", "0"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("workspace"), "{}", missing.stderr);
}

/// While `binarylm run` executes (and holds the workspace), the UI shows the run live: the
/// running stage, its log, and the training lines it has logged so far — and the stream of
/// server-sent events carries the same.
#[test]
fn a_running_pipeline_is_shown_live() {
    let p = Project::new();
    // A command stage that logs like a training stage: a metrics line in its work directory
    // (the parent of its output directory), then a pause long enough to be watched.
    p.write(
        "pipeline.yaml",
        "name: live\nstages:\n  slow:\n    kind: command\n    run: |\n      echo starting-slow\n      echo '{\"step\":1,\"loss\":2.5,\"tokens\":64,\"elapsed_s\":0.1,\"tokens_per_s\":640.0}' > \"$BINARYLM_OUT/../metrics.jsonl\"\n      if [ -n \"${RELEASE:-}\" ]; then for i in $(seq 1200); do [ -e \"$RELEASE\" ] \u{26}\u{26} break; sleep 0.1; done; fi\n      echo done > \"$BINARYLM_OUT/x\"\n",
    );
    p.run(&["run", "pipeline.yaml", "--force", "slow"]).ok();
    // Only this run pauses, until the test has watched it from the UI and a browser and
    // creates the release file (at most two minutes): a fixed pause was too short on a loaded
    // machine.
    let release = p.dir.path().join("release-slow");
    let mut run = p
        .cmd(&["run", "pipeline.yaml", "--force", "slow"])
        .env("RELEASE", &release)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let ui = Ui::start(&p, &["-f", "pipeline.yaml"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let live = loop {
        let live = ui.get_json("/api/live");
        if live["runs"][0]["running"][0]["metrics"][0]["loss"] == 2.5 {
            break live;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw the run live: {live} (the run: {:?})",
            run.try_wait()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stage = &live["runs"][0]["running"][0];
    assert_eq!(stage["stage"], "slow");
    assert!(
        stage["log_tail"]
            .as_str()
            .unwrap()
            .contains("starting-slow"),
        "{stage}"
    );
    assert_eq!(stage["metrics"][0]["tokens_per_s"], 640.0);
    let pipeline = ui.get_json("/api/pipelines/0");
    assert_eq!(pipeline["stages"][0]["state"], "running", "{pipeline}");
    if let Some(b) = Browser::start() {
        // The page's live band, fed by the server-sent events, and the DAG's running stage.
        b.open(&ui.url, "#/");
        let band = b.wait_for(
            "const s = document.querySelector('#live .live-stage[data-stage=slow]'); \
             return s ? s.textContent : null;",
        );
        assert!(band.as_str().unwrap().contains("loss 2.5"), "{band}");
        let state =
            b.eval("return document.querySelector('g.node[data-stage=slow]').dataset.state;");
        assert_eq!(state, "running");
    }

    // The same through server-sent events: the first `live` event.
    let mut s = TcpStream::connect(ui.addr()).expect("connect");
    write!(
        s,
        "GET /api/live/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        ui.addr()
    )
    .expect("send");
    let mut reader = BufReader::new(s);
    let mut event = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        if line.starts_with("event: live") {
            line.clear();
            reader.read_line(&mut line).expect("data");
            event = line.clone();
            break;
        }
        line.clear();
    }
    assert!(
        event.starts_with("data: ") && event.contains("\"slow\""),
        "{event}"
    );
    std::fs::write(&release, "").expect("release the run");
    assert!(run.wait().expect("wait").success());
    let after = ui.get_json("/api/live");
    assert_eq!(after["runs"], serde_json::json!([]), "{after}");
    // The snapshot followed the files: the finished run and its result are there.
    let pipeline = ui.get_json("/api/pipelines/0");
    assert_eq!(pipeline["stages"][0]["state"], "ran", "{pipeline}");
    assert_eq!(pipeline["runs"].as_array().unwrap().len(), 2, "{pipeline}");
}
