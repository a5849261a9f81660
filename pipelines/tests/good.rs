//! Good manifests load, with the DAG, params and fingerprints the runtime relies on.

use std::path::Path;

use pipelines::{fingerprint, FingerprintInput, Manifest};

fn load(name: &str) -> Manifest {
    let path = format!("tests/good/{name}.yaml");
    pipelines::load(Path::new(&path)).unwrap_or_else(|e| panic!("{path}:\n{e}"))
}

fn fingerprints(manifest: &Manifest) -> Vec<(String, String)> {
    let mut fps: Vec<(String, String)> = manifest
        .stages
        .iter()
        .map(|s| {
            let input = FingerprintInput {
                kind: s.params.kind().to_string(),
                impl_version: 1,
                params: s.params.canonical(),
                seed: manifest.seed,
                inputs: Default::default(),
                deps: Default::default(),
            };
            (s.name.clone(), fingerprint(&input))
        })
        .collect();
    fps.sort();
    fps
}

#[test]
fn the_design_custom_stage_loads() {
    let m = load("custom");
    assert_eq!(m.name, "scoring");
    assert_eq!(m.seed, pipelines::DEFAULT_SEED);
    assert!(m.path.is_absolute() && m.path.ends_with("tests/good/custom.yaml"));
    assert_eq!(m.dir, m.path.parent().expect("dir"));
    let custom = m.stage("custom").expect("custom");
    let Some(p) = custom.params.get::<pipelines::CommandParams>() else {
        panic!("custom is a command stage");
    };
    assert_eq!(
        p.run,
        r#"python scripts/score.py "$BINARYLM_INPUT_REPORT" "$BINARYLM_OUT""#
    );
    assert_eq!(p.inputs, vec!["report"]);
    assert_eq!(p.deps, vec!["scripts/score.py"]);
    assert_eq!((custom.span.line, custom.span.col), (8, 3));
    let refs = custom.params.references();
    assert_eq!(
        (refs[0].stage.as_str(), refs[0].key.as_str()),
        ("report", "inputs[0]")
    );
}

#[test]
fn a_full_manifest_has_its_dag_defaults_and_resources() {
    let m = load("full");
    assert_eq!(m.seed, 42);
    let names: Vec<&str> = m.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["publish", "prep", "train"], "file order");
    let dag = m.dag();
    let order: Vec<&str> = dag.topo_order().iter().map(|&i| names[i]).collect();
    assert_eq!(order, ["prep", "train", "publish"]);
    assert_eq!(dag.upstream(0), &[1, 2]);
    assert_eq!(dag.downstream(1), &[0, 2]);

    let prep = m.stage("prep").expect("prep");
    assert_eq!(prep.resources.threads, Some(2));
    assert!(!prep.resources.gpu);
    assert!(m.stage("train").expect("train").resources.gpu);
    let Some(p) = prep.params.get::<pipelines::CommandParams>() else {
        panic!("prep is a command stage");
    };
    assert_eq!(
        p.run,
        "mkdir -p \"$BINARYLM_OUT\"\nmake data OUT=\"$BINARYLM_OUT\"\n"
    );

    // Defaults applied, keys sorted; the alias was expanded.
    let canonical = m.stage("train").expect("train").params.canonical();
    assert_eq!(
        serde_json::to_string(&canonical).expect("json"),
        r#"{"deps":[],"env":{"PYTHONHASHSEED":"0"},"inputs":["prep"],"run":"python train.py"}"#
    );
}

#[test]
fn layout_comments_and_order_do_not_change_fingerprints() {
    let a = "name: x\nstages:\n  a:\n    kind: command\n    run: go\n    env: {A: '1', B: '2'}\n  b:\n    kind: command\n    run: go b\n    inputs: [a]\n";
    let b = "# reordered, reformatted, commented\nstages:\n  b: {inputs: [a], run: go b, kind: command}\n\n  a:\n    env:\n      B: \"2\"   # quoted differently\n      A: '1'\n    run: go\n    kind: command\nname: x\n";
    let ma = pipelines::parse(a, Path::new("a.yaml")).expect("a");
    let mb = pipelines::parse(b, Path::new("b.yaml")).expect("b");
    assert_eq!(fingerprints(&ma), fingerprints(&mb));

    let c = a.replace("run: go\n", "run: go!\n");
    let mc = pipelines::parse(&c, Path::new("c.yaml")).expect("c");
    let (fa, fc) = (fingerprints(&ma), fingerprints(&mc));
    assert_ne!(
        fa[0], fc[0],
        "a param change changes the stage's fingerprint"
    );
    assert_eq!(fa[1], fc[1], "other stages keep theirs");
}

#[test]
fn explain_names_a_changed_param_of_a_loaded_manifest() {
    let src = "name: x\nstages:\n  a:\n    kind: command\n    run: go\n    env: {MODE: fast}\n";
    let old = pipelines::parse(src, Path::new("p.yaml")).expect("old");
    let new = pipelines::parse(&src.replace("fast", "slow"), Path::new("p.yaml")).expect("new");
    let input = |m: &Manifest| FingerprintInput {
        kind: "command".into(),
        impl_version: 1,
        params: m.stages[0].params.canonical(),
        seed: m.seed,
        inputs: Default::default(),
        deps: Default::default(),
    };
    let changes = pipelines::explain(&input(&old), &input(&new));
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["param `env.MODE` changed"]);
}

#[test]
fn every_good_manifest_matches_the_schema_keys() {
    // Each key used in a good manifest's stages is a property of that kind's schema.
    let schema = pipelines::json_schema();
    for name in ["custom", "full"] {
        let text = std::fs::read_to_string(format!("tests/good/{name}.yaml")).expect("read");
        let m = load(name);
        for stage in &m.stages {
            let def = format!(
                "{}{}Stage",
                stage.params.kind()[..1].to_uppercase(),
                &stage.params.kind()[1..]
            );
            let props = &schema["$defs"][&def]["properties"];
            for key in stage.params.canonical().as_object().expect("object").keys() {
                assert!(props.get(key).is_some(), "{key} missing from schema {def}");
            }
        }
        assert!(text.contains("kind: command"));
    }
}

#[test]
fn a_data_stage_loads_with_defaults_resolved() {
    let m = load("data");
    let corpus = m.stage("corpus").expect("corpus");
    let Some(p) = corpus.params.get::<pipelines::DataParams>() else {
        panic!("corpus is a data stage");
    };
    assert_eq!(p.sources.len(), 3);
    assert_eq!(p.sources[1].separator.as_deref(), Some("\n\n"));
    assert_eq!(p.sources[2].split, Some(pipelines::SplitName::Val));
    assert_eq!(p.clean.normalize, pipelines::Normalize::Nfkc);
    assert!(p.clean.strip_control, "strip_control defaults to true");
    assert_eq!(p.split.selection(), pipelines::ValSelection::Count(10));
    assert!(corpus.params.references().is_empty());
    let canonical = corpus.params.canonical();
    assert_eq!(canonical["clean"]["invalid_utf8"], "repair");
    assert_eq!(canonical["sources"][2]["column"], "body");
}
