//! Engine benchmarks (criterion): parse, check and fix, in process, on a generated
//! many-service file, on the examples, and on the shared corpus when it is there
//! (../shared/corpus/public). Whole-process timings against other tools are in
//! scripts/bench.sh.
//!
//!     cargo bench --bench fixer

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, Options};
use compose_harden::yaml::Limits;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A compose file shaped like real ones: a shared `x-` anchor merged into every service,
/// environments, labels, volumes, a healthcheck and a block-scalar command.
fn generated(services: usize) -> String {
    let images = [
        "postgres:16",
        "redis:7-alpine",
        "nginx:1.27",
        "grafana/grafana:11.2.0",
    ];
    let mut s = String::from(
        "x-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n\nservices:\n",
    );
    for i in 0..services {
        let image = images[i % images.len()];
        s.push_str(&format!(
            "  # service {i}\n  svc-{i:05}:\n    <<: *common\n    image: {image}\n    environment:\n"
        ));
        for e in 0..20 {
            s.push_str(&format!("      SETTING_{e:02}: \"value-{i}-{e}\"\n"));
        }
        s.push_str(&format!(
            "    labels:\n      - traefik.enable=true\n      - traefik.http.routers.svc-{i}.rule=Host(`svc-{i}.example.com`)\n    volumes:\n      - data-{i}:/data\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 30s\n    command: |\n      run --id {i}\n      --verbose\n"
        ));
    }
    s
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

fn read_all(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    files(dir, &mut paths);
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|t| Document::parse(t.clone(), Limits::default()).is_ok())
        .collect()
}

fn group(c: &mut Criterion, name: &str, texts: &[String]) {
    if texts.is_empty() {
        return;
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    let opts = Options::default();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("parse", |b| {
        b.iter(|| {
            for t in texts {
                black_box(Document::parse(t.clone(), Limits::default()).is_ok());
            }
        })
    });
    let docs: Vec<Document> = texts
        .iter()
        .map(|t| Document::parse(t.clone(), Limits::default()).expect("parses"))
        .collect();
    g.bench_function("check", |b| {
        b.iter(|| {
            for d in &docs {
                black_box(fixer::check(d, &opts, None).len());
            }
        })
    });
    g.bench_function("fix", |b| {
        b.iter(|| {
            for t in texts {
                let fixed = fixer::fix(t.clone(), &opts, None, Applicability::Verified);
                black_box(fixed.map(|f| f.text.len()).ok());
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Below the size from which files are read in two parts, and above it.
    group(c, "generated-200", &[generated(200)]);
    group(c, "generated-2000", &[generated(2000)]);
    group(c, "examples", &read_all(&root.join("examples")));
    let corpus = root.join("../shared/corpus/public");
    if corpus.is_dir() {
        group(c, "corpus", &read_all(&corpus));
    } else {
        eprintln!(
            "corpus benchmarks skipped: no corpus at {}",
            corpus.display()
        );
    }
}

criterion_group!(fixer_benches, benches);
criterion_main!(fixer_benches);
