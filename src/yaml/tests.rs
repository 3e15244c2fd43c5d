use super::node::append_from_back;
use super::*;

fn tree(s: &str) -> Tree {
    Tree::parse(s.to_string(), Limits::default()).unwrap()
}

#[test]
fn appending_from_the_back_keeps_order_across_chunks() {
    for (head, tail) in [(0usize, 0usize), (3, 1), (5, 40_000), (70_000, 16_384)] {
        let mut to: Vec<u32> = (0..head as u32).collect();
        let from: Vec<u32> = (0..tail as u32).collect();
        append_from_back(&mut to, from, |x| x + 1_000_000);
        let want: Vec<u32> = (0..head as u32)
            .chain((0..tail as u32).map(|x| x + 1_000_000))
            .collect();
        assert_eq!(to, want, "head {head}, tail {tail}");
    }
}

#[test]
fn scalars_read_the_same_whether_verbatim_or_rewritten() {
    let t = tree(concat!(
        "a: plain\n",
        "b: \"quoted\"\n",
        "c: \"tab\\there\"\n",
        "d: 'it''s'\n",
        "e: two\n  lines\n",
        "f: |\n  block\n",
        "g: &x !!str 1\n",
        "h: *x\n",
    ));
    let want = [
        ("a", "plain"),
        ("b", "quoted"),
        ("c", "tab\there"),
        ("d", "it's"),
        ("e", "two lines"),
        ("f", "block\n"),
        ("g", "1"),
        ("h", "1"),
    ];
    for (key, value) in want {
        let (_, v) = t.get(t.root, key).expect(key);
        assert_eq!(t.scalar(v), Some(value), "{key}");
    }
    let (_, g) = t.get(t.root, "g").unwrap();
    assert_eq!((t.anchor(g), t.tag(g)), (Some("x"), Some("!!str")));
    let (_, a) = t.get(t.root, "a").unwrap();
    assert_eq!((t.anchor(a), t.tag(a)), (None, None));
}

/// The tree read in parts, and whether the parts were used.
fn in_parts(s: &str) -> (Tree, bool) {
    let used = split_points(s)
        .and_then(|(p, q)| parse_in_parts(s, p, q, Limits::default()))
        .is_some();
    (
        Tree::parse_split(s.to_string(), Limits::default(), 0).unwrap(),
        used,
    )
}

const SPLIT: &str = concat!(
    "# top\n",
    "x-common: &common\n",
    "  restart: always\n",
    "services:\n",
    "  a:\n",
    "    <<: *common\n",
    "    image: \"a\"\n",
    "    command: |\n",
    "      run a\n",
    "\n",
    "  b: &b\n",
    "    <<: *common\n",
    "    image: b # the b image\n",
    "  c:\n",
    "    <<: *common\n",
    "    environment: {X: 1,\n",
    "      Y: 2}\n",
    "  'd': &common\n",
    "    image: d\n",
    "  e:\n",
    "    <<: *common\n",
    "    labels: [x]\n",
    "  f:\n",
    "    <<: *b\n",
    "# after\n",
    "volumes:\n",
    "  v: *common\n",
);

#[test]
fn a_file_read_in_parts_is_the_file_read_whole() {
    let whole = Tree::parse_split(SPLIT.to_string(), Limits::default(), usize::MAX).unwrap();
    let (parts, used) = in_parts(SPLIT);
    assert!(used, "the parts fit together");
    assert_eq!(parts.outline(), whole.outline());
    // Anchors redefined later in the file are followed as the whole file reads them.
    let services = parts.get(parts.root, "services").unwrap().1;
    let e = parts.get(services, "e").unwrap().1;
    let merged = parts.entries(e).first().unwrap().1;
    assert_eq!(
        parts.scalar(parts.get(merged, "image").unwrap().1),
        Some("d")
    );
}

#[test]
fn cuts_that_could_change_the_meaning_are_not_taken() {
    for bad in [
        format!("%YAML 1.2\n---\n{SPLIT}"),
        format!("{SPLIT}---\nx: 1\n"),
        SPLIT.replace("  e:\n", "  ? e\n"),
        SPLIT.replace("volumes:", "? volumes"),
        // Found by fuzzing: an empty key after `services:` is placed after the node
        // before it, which a part read on its own does not have.
        SPLIT.replace("volumes:", ":"),
    ] {
        let whole = Tree::parse_split(bad.clone(), Limits::default(), usize::MAX);
        let parts = Tree::parse_split(bad.clone(), Limits::default(), 0);
        assert_eq!(
            parts.as_ref().map(Tree::outline).map_err(Clone::clone),
            whole.as_ref().map(Tree::outline).map_err(Clone::clone),
            "{bad}"
        );
    }
    // A cut inside a flow collection that spans lines leaves a part that does not parse;
    // the whole text is parsed instead.
    let spanning = "services:\n  a:\n    image: a\n    labels: [one, two, three, four,\n  g: 2]\n  b:\n    image: b\n";
    let (p, _) = split_points(spanning).unwrap();
    assert!(
        spanning[p..].starts_with("  g: 2]"),
        "the cut is inside the list"
    );
    assert!(parse_in_parts(spanning, p, spanning.len(), Limits::default()).is_none());
    let whole = Tree::parse_split(spanning.into(), Limits::default(), usize::MAX);
    let parts = Tree::parse_split(spanning.into(), Limits::default(), 0);
    assert_eq!(
        parts.as_ref().map(Tree::outline).map_err(Clone::clone),
        whole.as_ref().map(Tree::outline).map_err(Clone::clone),
    );
}

#[test]
fn a_line_of_spaces_deeper_than_a_block_scalar_is_part_of_it() {
    // Found by fuzzing: the new keys went in before such a line, which then left the
    // value, and the fixer refused its own edit.
    for (text, value) in [
        ("a: |\n  exec x\n   ", "exec x\n "),
        ("a: |\n  exec x\n   \nb: 1\n", "exec x\n \n"),
        ("a: |\n  exec x\n  \nb: 1\n", "exec x\n"),
    ] {
        let t = tree(text);
        let (_, v) = t.get(t.root, "a").unwrap();
        assert_eq!(t.scalar(v), Some(value));
        let end = t.node(v).end();
        let last = if value.ends_with(' ') || value.ends_with(" \n") {
            "   "
        } else {
            "exec x"
        };
        assert!(t.text()[..end].ends_with(last), "{text:?} ends at {end}");
    }
}

#[test]
fn children_of_nested_collections_stay_with_their_parent() {
    let t = tree("s:\n  a: [1, {x: 2}, 3]\n  b:\n    - q\n    - r: 4\nz: 5\n");
    let keys = |m: NodeId| -> Vec<&str> {
        t.entries(m)
            .iter()
            .map(|(k, _)| t.scalar(k).unwrap())
            .collect()
    };
    assert_eq!(keys(t.root), ["s", "z"]);
    let (_, s) = t.get(t.root, "s").unwrap();
    assert_eq!(keys(s), ["a", "b"]);
    let (_, a) = t.get(s, "a").unwrap();
    assert_eq!(t.items(a).len(), 3);
    assert_eq!(keys(t.items(a)[1]), ["x"]);
    let (_, b) = t.get(s, "b").unwrap();
    assert_eq!(t.scalar(t.items(b)[0]), Some("q"));
    assert_eq!(keys(t.items(b)[1]), ["r"]);
    // A block collection ends where its last child ends.
    assert_eq!(
        &t.text()[t.node(b).start()..t.node(b).end()],
        "- q\n    - r: 4"
    );
}

#[test]
fn expanded_size_counts_each_alias_as_a_copy_of_what_it_names() {
    let size = |s: &str, limit: usize| tree(s).expanded_size(limit);
    // Without aliases: the nodes themselves (map, key, value).
    assert_eq!(size("a: 1\n", 100), Some(3));
    // map, a, [1, 2] (3 nodes), b, *x (1 + 3).
    assert_eq!(size("a: &x [1, 2]\nb: *x\n", 100), Some(1 + 1 + 3 + 1 + 4));
    // One aliased node named twice, and an alias inside an aliased node.
    // map; a + [1] (2); b + {k: *x} (map, k, alias 1 + 2 = 5); c + *y (1 + 5); d + *x (1 + 2).
    let nested = "a: &x [1]\nb: &y {k: *x}\nc: *y\nd: *x\n";
    assert_eq!(size(nested, 100), Some(1 + 3 + 6 + 7 + 4));
    assert_eq!(size(nested, 16), None);
    // An alias inside the node it names never ends.
    assert_eq!(size("a: &x [1, *x]\n", 1000), None);
    assert_eq!(size("a: &x {k: [*x]}\n", 1000), None);
}

#[test]
fn values_of_collection_keys_are_found() {
    let t = tree("? [a, b]\n: c\nd: e\n? {x: 1}\n: [f]\ng: {[h]: i, j: k}\n");
    let text = |id: NodeId| t.text()[t.node(id).start()..t.node(id).end()].to_string();
    let top: Vec<(String, String)> = t
        .entries(t.root)
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    assert_eq!(
        top,
        [
            ("[a, b]", "c"),
            ("d", "e"),
            ("{x: 1}", "[f]"),
            ("g", "{[h]: i, j: k}")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let (_, g) = t.entries(t.root).last().unwrap();
    let inner: Vec<(String, String)> = t
        .entries(g)
        .iter()
        .rev()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    assert_eq!(
        inner,
        [("j", "k"), ("[h]", "i")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(t.entries(g).len(), 2);
    assert_eq!(t.get(g, "j").map(|(_, v)| text(v)).as_deref(), Some("k"));
}

#[test]
fn collection_keys_read_the_same_in_parts() {
    let text = concat!(
        "x: {? [a]: b}\n",
        "services:\n",
        "  a:\n",
        "    labels: {[k]: v, w: z}\n",
        "  b:\n",
        "    image: b\n",
        "    x-extra:\n",
        "      ? [m, n]\n",
        "      : o\n",
        "  c:\n",
        "    image: c\n",
        "volumes: {? [d]: e}\n",
    );
    let (parts, used) = in_parts(text);
    assert!(used, "the text was read in parts");
    assert_eq!(parts.outline(), tree(text).outline());
}

/// Found by the fuzz target: the parser starts an empty block scalar at its indicator when
/// the text (here, the first part) ends right after it, and at the next token otherwise.
#[test]
fn a_part_ending_in_an_empty_block_scalar_reads_as_in_the_whole_text() {
    for text in [
        "services:\n  : |\n   \n  b: \n",
        "services:\n : 1\n b: |2\nc: 3\n",
    ] {
        let whole = Tree::parse_split(text.to_string(), Limits::default(), usize::MAX).unwrap();
        let (parts, used) = in_parts(text);
        assert!(used, "{text:?} is read in parts");
        assert_eq!(parts.outline(), whole.outline(), "{text:?}");
    }
    // An empty block scalar that ends the file starts after its header, as elsewhere.
    let t = tree("a: |\n");
    let (_, v) = t.get(t.root, "a").unwrap();
    assert_eq!(
        (t.node(v).start(), t.node(v).end(), t.scalar(v)),
        (4, 4, Some(""))
    );
}
