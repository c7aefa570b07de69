//! The launch path in process, below process noise: load (find, parse, check, merge),
//! resolve and render one profile against a fixed [`Host::fixture`], as `clp use` does
//! before it writes and execs. No file is read: the profiles are the built-ins.
//!
//! `cargo bench -p clp-core --bench render`; `bench/run.sh` measures whole launches.

use std::hint::black_box;

use clp_core::render::render_use;
use clp_core::{resolve, Catalog, Host, Override, SearchPath};
use criterion::{criterion_group, criterion_main, Criterion};

fn launch_path(c: &mut Criterion) {
    let host = Host::fixture();
    let catalog = Catalog::new(SearchPath::default());
    let mut group = c.benchmark_group("load+resolve+render");
    for name in ["local-env", "local-glm", "local-container"] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let loaded = catalog.load(black_box(name), &[]).expect("a built-in");
                let profile = resolve(&loaded, &host).expect("valid");
                render_use(&profile, &host, &[]).expect("renders")
            })
        });
    }
    // `--set` goes through the same check as a file.
    let set = [Override::parse("network.mode=allowlist").expect("an override")];
    group.bench_function("local-glm --set network.mode=allowlist", |b| {
        b.iter(|| {
            let loaded = catalog.load("local-glm", black_box(&set)).expect("loads");
            let profile = resolve(&loaded, &host).expect("valid");
            render_use(&profile, &host, &[]).expect("renders")
        })
    });
    group.finish();
    // Each stage alone, to say where the time goes.
    let loaded = catalog.load("local-glm", &[]).expect("a built-in");
    let profile = resolve(&loaded, &host).expect("valid");
    c.bench_function("stage/load local-glm", |b| {
        b.iter(|| catalog.load(black_box("local-glm"), &[]).expect("loads"))
    });
    c.bench_function("stage/resolve local-glm", |b| {
        b.iter(|| resolve(black_box(&loaded), &host).expect("valid"))
    });
    c.bench_function("stage/render local-glm", |b| {
        b.iter(|| render_use(black_box(&profile), &host, &[]).expect("renders"))
    });
}

criterion_group!(benches, launch_path);
criterion_main!(benches);
