use compose_harden::yaml::{Limits, Tree};

#[test]
#[ignore]
fn hunt() {
    let seeds = [
        "services:\n  a:\n    b: c\nx: y\n",
        "services:\n a: 1\n b: 2\nc: 3\n",
        "services:\n  a: &x 1\n  b: *x\n",
        "services:\n  a: |\n   x\n  b: 2\n",
        "x: 1\nservices:\n a:\n b:\n",
    ];
    let alpha: Vec<char> = " \n:-#&*!|>'\"[]{},?%ab\t\r.s0".chars().collect();
    let mut rng: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let iters: usize = std::env::var("HUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut found = 0;
    for _ in 0..iters {
        let mut s: Vec<char> = seeds[(next() % seeds.len() as u64) as usize]
            .chars()
            .collect();
        let n = 1 + next() % 4;
        for _ in 0..n {
            let op = next() % 3;
            let pos = (next() % (s.len() as u64 + 1)) as usize;
            let c = alpha[(next() % alpha.len() as u64) as usize];
            match op {
                0 if pos < s.len() => s[pos] = c,
                1 => s.insert(pos, c),
                _ if pos < s.len() => {
                    s.remove(pos);
                }
                _ => {}
            }
        }
        let text: String = s.into_iter().collect();
        let whole =
            Tree::parse_split(text.clone(), Limits::default(), usize::MAX).map(|t| t.outline());
        let parts = Tree::parse_split(text.clone(), Limits::default(), 0).map(|t| t.outline());
        if whole != parts {
            println!("DIFF {:?}\n whole={:?}\n parts={:?}", text, whole, parts);
            found += 1;
            if found > 5 {
                break;
            }
        }
    }
    assert_eq!(found, 0);
}
