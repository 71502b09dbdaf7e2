//! `docs/topology.md` is generated from the doc comments of the topology model
//! (`pipeline/src/topology/model.rs`); this test fails when the two drift apart.
//! Regenerate with `SECFLOW_BLESS=1 cargo test -p pipeline --test topology_reference`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[derive(Debug)]
struct Item {
    name: String,
    doc: Vec<String>,
    kind: ItemKind,
}

#[derive(Debug)]
enum ItemKind {
    Struct(Vec<Field>),
    Enum {
        snake_case: bool,
        variants: Vec<Field>,
    },
}

#[derive(Debug)]
struct Field {
    name: String,
    ty: String,
    doc: Vec<String>,
    optional: bool,
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A small line-based reader of our own model file: public structs and enums, their fields or
/// variants, `///` docs and `#[serde(...)]` attributes. The model file keeps to that shape.
fn parse(src: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    let mut current: Option<Item> = None;
    for raw in src.lines() {
        let line = raw.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if line.starts_with("#[") {
            attrs.push(line.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub struct ") {
            if !rest.ends_with('{') {
                // Tuple and unit structs (e.g. the `Secret` wrapper) are not config mappings.
                doc.clear();
                attrs.clear();
                continue;
            }
            let name = rest.trim_end_matches(" {").trim().to_string();
            current = Some(Item {
                name,
                doc: std::mem::take(&mut doc),
                kind: ItemKind::Struct(Vec::new()),
            });
            attrs.clear();
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub enum ") {
            let name = rest.trim_end_matches(" {").trim().to_string();
            if name.ends_with("Error") {
                // Error types live beside the config types but are not written in topologies.
                doc.clear();
                attrs.clear();
                continue;
            }
            let snake_case = attrs
                .iter()
                .any(|a| a.contains("rename_all = \"snake_case\""));
            current = Some(Item {
                name,
                doc: std::mem::take(&mut doc),
                kind: ItemKind::Enum {
                    snake_case,
                    variants: Vec::new(),
                },
            });
            attrs.clear();
            continue;
        }
        if line == "}" {
            if let Some(item) = current.take() {
                items.push(item);
            }
            doc.clear();
            attrs.clear();
            continue;
        }
        let Some(item) = current.as_mut() else {
            doc.clear();
            attrs.clear();
            continue;
        };
        match &mut item.kind {
            ItemKind::Struct(fields) => {
                if let Some(rest) = line.strip_prefix("pub ") {
                    if let Some((name, ty)) = rest.split_once(": ") {
                        fields.push(Field {
                            name: name.to_string(),
                            ty: ty.trim_end_matches(',').to_string(),
                            doc: std::mem::take(&mut doc),
                            optional: attrs.iter().any(|a| a.contains("default")),
                        });
                    }
                }
            }
            ItemKind::Enum {
                snake_case,
                variants,
            } => {
                let body = line.trim_end_matches(',');
                if !body.is_empty() && body.chars().next().is_some_and(char::is_uppercase) {
                    let (variant, ty) = match body.split_once('(') {
                        Some((v, t)) => (v.to_string(), t.trim_end_matches(')').to_string()),
                        None => (body.to_string(), String::new()),
                    };
                    let renamed = attrs
                        .iter()
                        .find_map(|a| {
                            a.split("rename = \"")
                                .nth(1)
                                .and_then(|r| r.split('"').next())
                        })
                        .map(str::to_string);
                    let name = renamed.unwrap_or_else(|| {
                        if *snake_case {
                            snake(&variant)
                        } else {
                            variant.clone()
                        }
                    });
                    variants.push(Field {
                        name,
                        ty,
                        doc: std::mem::take(&mut doc),
                        optional: false,
                    });
                }
            }
        }
        attrs.clear();
        doc.clear();
    }
    items
}

fn cell(doc: &[String]) -> String {
    doc.join(" ").replace('|', "\\|")
}

fn render(items: &[Item]) -> String {
    let mut out = String::from(
        "# Topology reference\n\n\
         Generated from the doc comments of `pipeline/src/topology/model.rs` and the sink,\n\
         privacy and TAXII config types in `processors/src/{sink/*,privacy,intel/taxii}/config.rs` by\n\
         `SECFLOW_BLESS=1 cargo test -p pipeline --test topology_reference`; a test fails when\n\
         this page and the types drift apart. Every mapping rejects unknown keys, `${NAME}` and\n\
         `${NAME:-default}` are replaced from the environment before parsing, and secrets are only\n\
         given by reference (`{env: NAME}` or `{file: PATH}`). `secflow validate FILE` reports every\n\
         problem as `file:line:column: path: message`.\n\n\
         The top-level type is `Topology`.\n",
    );
    for item in items {
        out.push_str(&format!(
            "\n## `{}`\n\n{}\n\n",
            item.name,
            item.doc.join("\n")
        ));
        match &item.kind {
            ItemKind::Struct(fields) => {
                out.push_str("| key | type | required | description |\n|---|---|---|---|\n");
                for f in fields {
                    out.push_str(&format!(
                        "| `{}` | `{}` | {} | {} |\n",
                        f.name,
                        f.ty,
                        if f.optional { "no" } else { "yes" },
                        cell(&f.doc)
                    ));
                }
            }
            ItemKind::Enum { variants, .. } => {
                out.push_str("| value | carries | description |\n|---|---|---|\n");
                for v in variants {
                    let carries = if v.ty.is_empty() {
                        String::new()
                    } else {
                        format!("`{}`", v.ty)
                    };
                    out.push_str(&format!(
                        "| `{}` | {} | {} |\n",
                        v.name,
                        carries,
                        cell(&v.doc)
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn topology_reference_matches_the_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The model, then the config types it embeds from `processors` (sinks, privacy).
    let mut items = Vec::new();
    for file in [
        "src/topology/model.rs",
        "../processors/src/sink/splunk_hec/config.rs",
        "../processors/src/sink/elasticsearch/config.rs",
        "../processors/src/sink/webhook/config.rs",
        "../processors/src/sink/datadog/config.rs",
        "../processors/src/sink/sumo_logic/config.rs",
        "../processors/src/sink/syslog/config.rs",
        "../processors/src/sink/event_fields.rs",
        "../processors/src/sink/alerting/config.rs",
        "../processors/src/sink/pagerduty/config.rs",
        "../processors/src/sink/opsgenie/config.rs",
        "../processors/src/sink/chat/config.rs",
        "../processors/src/sink/slack/config.rs",
        "../processors/src/sink/teams/config.rs",
        "../processors/src/privacy/config.rs",
        "../processors/src/intel/taxii/config.rs",
        "../processors/src/secret.rs",
    ] {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        // Resolved at run time, never written in a topology.
        items.extend(parse(&src).into_iter().filter(|i| i.name != "Credentials"));
    }
    for must in [
        "Topology",
        "KafkaConfig",
        "SchemaRegistryConfig",
        "TopicSpec",
        "StageConfig",
        "TapStage",
        "IntelPollStage",
        "EnrichStage",
        "IndicatorStoreConfig",
        "TaxiiServerConfig",
    ] {
        assert!(
            items.iter().any(|i| i.name == must),
            "{must} not found in model.rs"
        );
    }
    for item in &items {
        assert!(!item.doc.is_empty(), "{} has no doc comment", item.name);
        let fields = match &item.kind {
            ItemKind::Struct(f) => f,
            ItemKind::Enum { variants, .. } => variants,
        };
        for f in fields {
            assert!(
                !f.doc.is_empty(),
                "{}.{} has no doc comment",
                item.name,
                f.name
            );
        }
    }
    let rendered = render(&items);
    let doc_path = root.join("../docs/topology.md");
    if std::env::var_os("SECFLOW_BLESS").is_some() {
        std::fs::write(&doc_path, &rendered).unwrap();
    }
    let on_disk = std::fs::read_to_string(&doc_path).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "docs/topology.md is out of date: run SECFLOW_BLESS=1 cargo test -p pipeline --test topology_reference"
    );
}
