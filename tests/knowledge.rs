//! The built-in knowledge base as data: every row well-formed, citing a source at a version,
//! naming the tags it was checked for, and reachable (first match wins); and the rows that
//! were found wrong (issue 12) hold what the images' own sources say.

use compose_harden::facts::LINUX_CAPS;
use compose_harden::knowledge::{self, Confidence, ImageRef, Profile};

fn rows() -> &'static [Profile] {
    knowledge::builtin()
}

fn name(p: &Profile) -> String {
    match p.tags.is_empty() {
        true => p.repos.join(","),
        false => format!("{} [{}]", p.repos.join(","), p.tags.join(",")),
    }
}

fn row(image: &str) -> &'static Profile {
    let i = ImageRef::parse(image).unwrap();
    knowledge::lookup(&[], &i).unwrap_or_else(|| panic!("no row for {image}"))
}

/// A source names a version when it is a design note, an issue or pull request, a URL with a
/// version in it, or `owner/repo <version-or-commit> path...` (the second word carries a
/// digit: a version directory, a tag, a branch number or a commit).
fn names_a_version(s: &str) -> bool {
    if s.starts_with("design/") {
        return true;
    }
    let has_digit = |w: &str| w.bytes().any(|b| b.is_ascii_digit());
    if s.contains("://") {
        return has_digit(s);
    }
    let first = s.split_whitespace().next().unwrap_or("");
    if let Some((_, n)) = first.split_once('#') {
        return !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    }
    s.split_whitespace().nth(1).is_some_and(has_digit)
}

/// Trusted rows whose first source does not name a version yet (read on a default branch
/// whose commit was not recorded). This number may only go down.
const UNVERSIONED_FIRST_SOURCES: usize = 53;

#[test]
fn every_row_is_well_formed() {
    for p in rows() {
        let n = name(p);
        assert!(!p.repos.is_empty(), "a row without repos");
        assert!(!p.why.trim().is_empty(), "{n}: no why");
        assert!(
            !p.sources.is_empty() && p.sources.iter().all(|s| !s.trim().is_empty()),
            "{n}: no source"
        );
        for caps in [&p.caps_as_root, &p.caps_as_nonroot] {
            for c in caps {
                assert!(
                    LINUX_CAPS.contains(&c.as_str()),
                    "{n}: unknown capability {c}"
                );
                assert_ne!(c, "DAC_READ_SEARCH", "{n}: DAC_READ_SEARCH is never added");
            }
            let mut sorted = caps.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(&sorted, caps, "{n}: capabilities not sorted or repeated");
        }
        if let Some(u) = &p.user {
            let (uid, gid) = u
                .split_once(':')
                .unwrap_or_else(|| panic!("{n}: {u} lacks :gid"));
            assert!(uid.parse::<u32>().is_ok_and(|id| id > 0), "{n}: user {u}");
            assert!(gid.parse::<u32>().is_ok(), "{n}: user {u}");
        }
        if matches!(p.confidence, Confidence::Measured | Confidence::Inspected) {
            assert!(
                p.digest.is_some(),
                "{n}: a measured/inspected row names its digest"
            );
        }
    }
}

#[test]
fn every_row_names_the_tags_it_was_checked_for() {
    for p in rows() {
        let n = name(p);
        if p.checked_tags.is_empty() {
            // Only a row that says it rests on nothing read may name no checked tag.
            assert!(
                p.confidence == Confidence::Unverified
                    && p.sources.iter().any(|s| s.contains("not checked")),
                "{n}: no checked_tags"
            );
        }
        for t in &p.checked_tags {
            assert!(
                !t.trim().is_empty() && !t.contains(' '),
                "{n}: checked tag {t:?}"
            );
        }
    }
}

#[test]
fn sources_name_a_file_or_page_at_a_version() {
    let mut unversioned = Vec::new();
    for p in rows() {
        if !p.confidence.is_trusted() {
            continue;
        }
        if !names_a_version(&p.sources[0]) {
            unversioned.push(format!("{}: {}", name(p), p.sources[0]));
        }
    }
    assert!(
        unversioned.len() <= UNVERSIONED_FIRST_SOURCES,
        "{} trusted rows cite no version first (at most {UNVERSIONED_FIRST_SOURCES}):\n{}",
        unversioned.len(),
        unversioned.join("\n")
    );
}

#[test]
fn the_version_rule_accepts_versions_and_refuses_bare_files() {
    assert!(names_a_version(
        "docker-library/postgres 18/trixie/docker-entrypoint.sh"
    ));
    assert!(names_a_version("grafana/grafana 78515af Dockerfile"));
    assert!(names_a_version("nginx/docker-nginx#524"));
    assert!(names_a_version("design/verified-caps.md (nginx)"));
    assert!(!names_a_version(
        "grafana/grafana Dockerfile (ARG GF_UID=472)"
    ));
    assert!(!names_a_version("owner/repo#abc"));
    assert!(!names_a_version("https://example.org/docs/docker"));
}

/// `later` can never be reached when an earlier row matches every image it matches: each of
/// its repositories is matched by an earlier repository glob, and the earlier row takes
/// every tag (no `tags`) or every one of the later row's tag globs.
fn covers(earlier: &Profile, later: &Profile) -> bool {
    let repos = later
        .repos
        .iter()
        .all(|r| earlier.repos.iter().any(|e| knowledge::glob(e, r)));
    let tags = earlier.tags.is_empty()
        || (!later.tags.is_empty()
            && later
                .tags
                .iter()
                .all(|t| earlier.tags.iter().any(|e| knowledge::glob(e, t))));
    repos && tags
}

#[test]
fn no_row_is_shadowed_by_an_earlier_one() {
    let all = rows();
    for (i, p) in all.iter().enumerate() {
        for e in &all[..i] {
            assert!(
                !covers(e, p),
                "{} can never match: {} comes first",
                name(p),
                name(e)
            );
        }
    }
}

#[test]
fn the_shadow_check_sees_globs_and_tags() {
    let parse = |t: &str| knowledge::parse_profiles(t).unwrap().remove(0);
    let base = "class = \"base-image\"\nimage_user = \"root\"\ncaps_as_root = []\ncaps_as_nonroot = []\nnnp = true\nconfidence = \"pattern\"\nwhy = \"w\"\nsources = [\"s\"]\n";
    let row = |head: &str| parse(&format!("[[image]]\n{head}\n{base}"));
    let glob = row("repos = [\"bitnami/*\"]");
    let exact = row("repos = [\"bitnami/redis\"]");
    let tagged = row("repos = [\"bitnami/redis\"]\ntags = [\"7*\"]");
    let narrower = row("repos = [\"bitnami/redis\"]\ntags = [\"7.2*\"]");
    assert!(covers(&glob, &exact) && covers(&glob, &tagged));
    assert!(covers(&tagged, &narrower));
    assert!(
        !covers(&tagged, &exact),
        "an untagged row still takes other tags"
    );
    assert!(!covers(&exact, &glob));
}

#[test]
fn elasticsearch_before_8_starts_as_root_and_chroots_to_1000() {
    for image in [
        "elasticsearch:7.17.10",
        "docker.elastic.co/elasticsearch/elasticsearch:6.8.23",
    ] {
        let p = row(image);
        assert_eq!(p.image_user, "root", "{image}");
        assert_eq!(
            p.caps_as_root,
            ["CHOWN", "SETGID", "SETUID", "SYS_CHROOT"],
            "{image}"
        );
        assert!(p.sources[0].contains("7.17"), "{image}: {}", p.sources[0]);
    }
    let p = row("elasticsearch:8.15.0");
    assert!(p.caps_as_root.is_empty() && p.image_user.starts_with("1000"));
    assert!(!p.sources[0].contains("7.17"));
    for image in ["kibana:7.17.10", "logstash:7.17.10"] {
        assert!(row(image).image_user.starts_with("1000"), "{image}");
    }
}

#[test]
fn postgres_built_before_the_chmod_fix_needs_fowner() {
    for image in [
        "postgres:9.4",
        "postgres:9.4-alpine",
        "postgres:12.4",
        "postgres:13.0-alpine",
        "postgres:9.6.19",
    ] {
        assert!(
            row(image).caps_as_root.contains(&"FOWNER".to_string()),
            "{image}"
        );
    }
    for image in [
        "postgres:12.5",
        "postgres:13",
        "postgres:16-alpine",
        "postgres:9.6.24",
        "postgres",
    ] {
        assert!(
            !row(image).caps_as_root.contains(&"FOWNER".to_string()),
            "{image}"
        );
    }
}

#[test]
fn variants_and_older_tags_cite_their_own_files() {
    for (image, want) in [
        ("postgres:12-alpine", "alpine"),
        ("postgres:12", "13/bookworm"),
        ("postgres:9.4", "9.4/"),
        ("nginx:1.27-alpine", "alpine"),
        ("node:20-alpine", "alpine"),
        ("node:22", "bookworm"),
    ] {
        let s = &row(image).sources[0];
        assert!(s.contains(want), "{image}: {s}");
    }
    assert!(!row("nginx").sources[0].contains("alpine"));
}

#[test]
fn rows_found_wrong_in_issue_12_are_corrected() {
    let has = |image: &str, cap: &str| row(image).caps_as_root.iter().any(|c| c == cap);
    assert!(has("appwrite/appwrite:1.6.0", "DAC_OVERRIDE"));
    assert!(!row("minio/minio").confidence.is_trusted());
    assert!(row("minio/minio").why.contains("MINIO_USERNAME"));
    for image in [
        "openzipkin/zipkin-mysql",
        "ghcr.io/openzipkin/zipkin-ui:3",
        "openzipkin/zipkin-uiproxy",
        "openzipkin/zipkin-rabbitmq",
    ] {
        let p = row(image);
        assert_eq!(p.image_user, "root", "{image}");
        assert!(has(image, "SETUID") && has(image, "SETGID"), "{image}");
    }
    assert!(
        row("busybox")
            .notes
            .as_deref()
            .unwrap_or("")
            .contains("NET_RAW")
    );
    let influx = row("influxdb:1.11");
    assert!(influx.caps_as_root.is_empty() && influx.image_user.starts_with("influxdb"));
    assert!(influx.sources[0].contains("1.11"));
    assert_eq!(row("influxdb:1.8").image_user, "root");
    for image in [
        "php:8.3-fpm",
        "php:8.3-fpm-alpine",
        "php:8.3-apache",
        "httpd:2.4",
        "httpd:alpine",
        "wordpress",
        "wordpress:fpm",
        "nextcloud:fpm-alpine",
        "drupal:10",
    ] {
        assert!(
            has(image, "KILL"),
            "{image}: a root master signals workers of another uid"
        );
    }
}

/// The `library/` list of docker-library/official-images at 37079fb336 (2026-08-22).
const OFFICIAL_IMAGES: &[&str] = &[
    "adminer",
    "aerospike",
    "almalinux",
    "alpine",
    "alt",
    "amazoncorretto",
    "amazonlinux",
    "api-firewall",
    "arangodb",
    "archlinux",
    "azul-zulu",
    "backdrop",
    "bash",
    "bonita",
    "buildpack-deps",
    "busybox",
    "caddy",
    "cassandra",
    "chronograf",
    "cirros",
    "clearlinux",
    "clefos",
    "clickhouse",
    "clojure",
    "composer",
    "convertigo",
    "couchbase",
    "couchdb",
    "crate",
    "dart",
    "debian",
    "docker",
    "drupal",
    "eclipse-mosquitto",
    "eclipse-temurin",
    "eggdrop",
    "elasticsearch",
    "elixir",
    "emqx",
    "erlang",
    "espocrm",
    "fedora",
    "flink",
    "fluentd",
    "friendica",
    "gazebo",
    "gcc",
    "geonetwork",
    "ghost",
    "golang",
    "gradle",
    "groovy",
    "haproxy",
    "haskell",
    "haxe",
    "hello-world",
    "hitch",
    "httpd",
    "hylang",
    "ibm-semeru-runtimes",
    "ibmjava",
    "influxdb",
    "irssi",
    "jetty",
    "joomla",
    "jruby",
    "julia",
    "kapacitor",
    "kibana",
    "kong",
    "krakend",
    "lightstreamer",
    "liquibase",
    "logstash",
    "mageia",
    "mariadb",
    "matomo",
    "maven",
    "mediawiki",
    "memcached",
    "mongo",
    "mongo-express",
    "monica",
    "mysql",
    "nats",
    "neo4j",
    "neurodebian",
    "nextcloud",
    "nginx",
    "nim",
    "node",
    "notary",
    "odoo",
    "open-liberty",
    "openjdk",
    "oraclelinux",
    "orientdb",
    "percona",
    "perl",
    "photon",
    "php",
    "php-zendserver",
    "phpmyadmin",
    "plone",
    "postfixadmin",
    "postgres",
    "pypy",
    "python",
    "r-base",
    "rabbitmq",
    "rakudo-star",
    "redis",
    "redmine",
    "registry",
    "rethinkdb",
    "rocket.chat",
    "rockylinux",
    "ros",
    "ruby",
    "rust",
    "sapmachine",
    "satosa",
    "silverpeas",
    "solr",
    "sonarqube",
    "spark",
    "spiped",
    "storm",
    "swift",
    "swipl",
    "teamspeak",
    "telegraf",
    "tomcat",
    "tomee",
    "traefik",
    "ubuntu",
    "unit",
    "varnish",
    "websphere-liberty",
    "wordpress",
    "xwiki",
    "yourls",
    "znc",
    "zookeeper",
];

/// Official images no row profiles yet; this list may only shrink.
const OFFICIAL_WITHOUT_A_ROW: &[&str] = &[
    "aerospike",
    "arangodb",
    "bonita",
    "convertigo",
    "gazebo",
    "hitch",
    "lightstreamer",
    "open-liberty",
    "php-zendserver",
    "plone",
    "silverpeas",
    "websphere-liberty",
    "xwiki",
];

#[test]
fn every_official_image_has_a_row_but_the_known_gaps() {
    let mut missing = Vec::new();
    for name in OFFICIAL_IMAGES {
        let found = knowledge::lookup(&[], &ImageRef::parse(name).unwrap()).is_some()
            || knowledge::lookup(&[], &ImageRef::parse(&format!("{name}:latest")).unwrap())
                .is_some();
        if !found {
            missing.push(*name);
        }
    }
    assert_eq!(missing, OFFICIAL_WITHOUT_A_ROW);
}
