//! The committed JSON Schema of the scenario format stays in step with the Rust types.

#[test]
fn committed_scenario_schema_is_current() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-conform"))
        .args(["schema", "scenario"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/schema.json"
    ))
    .unwrap();
    assert!(
        generated == committed,
        "scenarios/schema.json is stale: run `cargo run -- schema > scenarios/schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(schema["title"], "Scenario");
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys must be refused"
    );
    assert!(schema["properties"]["steps"].is_object());
}
