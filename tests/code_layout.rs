//! Rules of the code's shape that a newcomer relies on: no source file grows past ~500 lines,
//! every file says in its first lines what it owns, and no two modules depend on each other
//! (the module graph, read from `crate::` paths, has no cycle), neither among the crate's
//! top-level modules nor among `model`'s files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if !["pkg", "models", "node_modules"].iter().any(|skip| p.ends_with(skip)) {
                files(&p, exts, out);
            }
        } else if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
            out.push(p);
        }
    }
}

#[test]
fn no_file_is_over_500_lines_and_each_says_what_it_owns() {
    let mut all = Vec::new();
    files(&root().join("src"), &["rs"], &mut all);
    files(&root().join("shaders"), &["wgsl"], &mut all);
    files(&root().join("www"), &["js"], &mut all);
    assert!(all.len() > 50, "found {} files", all.len());
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        let lines = text.lines().count();
        assert!(lines <= 500, "{}: {lines} lines (split it)", p.display());
        let first = text.lines().next().unwrap_or("");
        assert!(first.starts_with("//"), "{}: the first line should say what the file owns, not {first:?}", p.display());
    }
}

/// Edges `module → module it names` for the files under `dir`, where a file's module is
/// `name(path)` and a dependency is each path after `crate::` (mapped by `target`; a brace
/// group `crate::a::{b, c::d}` gives `a::b` and `a::c::d`).
fn graph(dir: &Path, name: impl Fn(&Path) -> Option<String>, target: impl Fn(&str) -> Option<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(dir, &["rs"], &mut all);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in all {
        let Some(from) = name(&p) else { continue };
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                let mut paths = vec![head.clone()];
                if head.ends_with("::") && rest[head.len()..].starts_with('{') {
                    let inner = &rest[head.len() + 1..rest.find('}').unwrap_or(rest.len())];
                    paths = inner.split(',').map(|p| format!("{head}{}", p.trim())).collect();
                }
                for path in paths {
                    if let Some(to) = target(&path).filter(|t| *t != from) {
                        g.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
            // `use super::x` inside a module's own files stays inside it.
        }
    }
    g
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, stack: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            return Some(stack[i..].iter().cloned().chain([n.to_string()]).collect());
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys().find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_cycles() {
    let src = root().join("src");
    let top = |p: &Path| {
        let rel = p.strip_prefix(&src).ok()?;
        let first = rel.components().next()?.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        (!matches!(first.as_str(), "lib" | "main" | "cli")).then_some(first)
    };
    let g = graph(&src, top, |path| path.split("::").next().filter(|s| !s.is_empty()).map(str::to_string));
    assert!(g.contains_key("engine") && g["engine"].contains("gpu"), "the graph was read: {g:?}");
    assert_eq!(find_cycle(&g), None, "top-level modules depend on each other: {g:?}");
    assert!(!g.get("model").is_some_and(|d| d.contains("sampler") || d.contains("engine")), "the model layer imports only below it: {:?}", g.get("model"));
    assert!(
        !g.get("sampler").is_some_and(|d| d.contains("gpu") || d.contains("engine") || d.contains("cpu")),
        "the sampler knows nothing about GPUs or the CPU twin: {:?}",
        g.get("sampler")
    );

    let model = src.join("model");
    let file = |p: &Path| p.strip_prefix(&model).ok().map(|r| r.to_string_lossy().trim_end_matches(".rs").to_string()).filter(|f| f != "mod");
    // Names `model/mod.rs` re-exports, by the file that defines them.
    let reexports = [
        ("DType", "tensor"),
        ("HostTensor", "tensor"),
        ("ModelConfig", "config"),
        ("ModelIndex", "index"),
        ("TensorRef", "index"),
        ("TextTokenizer", "tokenizer"),
        ("ModelWeights", "weights"),
    ];
    let arch = ["Family", "Key", "Quant", "Role", "RopeStyle", "Tensors"];
    let g = graph(&model, file, |path| {
        let first = path.strip_prefix("model::")?.split("::").next()?.trim();
        let m = reexports.iter().find(|r| r.0 == first).map(|r| r.1).or(arch.contains(&first).then_some("arch")).unwrap_or(first);
        (!m.is_empty() && m.chars().next().is_some_and(|c| c.is_lowercase())).then(|| m.to_string())
    });
    assert!(g.contains_key("index"), "{g:?}");
    assert_eq!(find_cycle(&g), None, "model's files depend on each other: {g:?}");
}

/// Whether `step` (a loop's increment) is positive whatever the parameters: products of
/// positive literals, constants (UPPERCASE: `const` or `override`, all at least 1) and the
/// subgroup size `lanes`; never a runtime parameter (`p.…`), which could be 0.
fn positive_step(step: &str) -> bool {
    step.split('*').map(str::trim).all(|f| {
        let literal = f.trim_end_matches('u').parse::<u32>().is_ok_and(|v| v > 0);
        let constant = !f.is_empty() && f.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        literal || constant || f == "lanes"
    })
}

#[test]
fn every_shader_loop_visibly_ends() {
    // The kernels are compiled without naga's loop bounding (`Gpu::set_loop_bounding`), so no
    // loop may be infinite: each is a `for` that counts up towards its bound by a positive step
    // (`positive_step`), or halves or shifts right towards `> 0u`, or doubles from a nonzero
    // start below a constant bound; no `loop` or `while`.
    let mut all = Vec::new();
    files(&root().join("shaders"), &["wgsl"], &mut all);
    let mut loops = 0;
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            let at = format!("{}:{}: {code}", p.display(), n + 1);
            assert!(!code.starts_with("loop") && !code.starts_with("while"), "{at}: only `for` loops");
            let Some(head) = code.strip_prefix("for (var ") else { continue };
            loops += 1;
            let head = head.trim_end_matches('{').trim().trim_end_matches(')');
            let parts: Vec<&str> = head.split(';').map(str::trim).collect();
            assert_eq!(parts.len(), 3, "{at}");
            let v = parts[0].split([' ', ':', '=']).next().unwrap();
            let (cond, update) = (parts[1], parts[2]);
            let up = cond.starts_with(&format!("{v} < ")) || cond.starts_with(&format!("{v} <= "));
            let ok = if let Some(step) = update.strip_prefix(&format!("{v} = {v} + ")) {
                up && positive_step(step)
            } else if update == format!("{v}++") || update == format!("{v} += 1u") {
                up
            } else if update == format!("{v} = {v} >> 1u") || update == format!("{v} = {v} / 2u") {
                cond == format!("{v} > 0u")
            } else if update == format!("{v} = {v} << 1u") {
                up && !parts[0].ends_with("= 0u") && positive_step(cond.rsplit(' ').next().unwrap())
            } else {
                false
            };
            assert!(ok, "{at}: a loop whose end is not plain to see");
        }
    }
    assert!(loops > 50, "found {loops} loops");
}
