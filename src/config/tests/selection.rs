//! Namespace selection: patterns, exclude-wins, and the databases and
//! collections that are never (or only conditionally) backed up.

use super::{full_job, parse_ok};
use crate::config::{Pattern, Selection};

fn selection(include: &[&str], exclude: &[&str], include_users: bool) -> Selection {
    Selection {
        include: include.iter().map(|p| Pattern::parse(p).unwrap()).collect(),
        exclude: exclude.iter().map(|p| Pattern::parse(p).unwrap()).collect(),
        include_users,
    }
}

#[test]
fn all_selects_every_user_namespace() {
    let all = Selection::all();
    assert!(all.includes_db("app"));
    assert!(all.includes("app", "orders"));
    assert!(all.includes("app", "orders.archive"));
    assert!(all.includes("app", "system.js"));
    for internal in ["local", "config", "admin"] {
        assert!(!all.includes_db(internal), "{internal}");
    }
    assert!(!all.includes("local", "oplog.rs"));
    assert!(!all.includes("config", "system.sessions"));
    assert!(!all.includes("admin", "system.users"));
    assert!(!all.includes("admin", "customers"));
    for system in [
        "system.profile",
        "system.views",
        "system.buckets.weather",
        "system.indexes",
    ] {
        assert!(!all.includes("app", system), "{system}");
    }
}

#[test]
fn patterns_name_databases_or_collections() {
    let s = selection(&["app", "crm.customers"], &[], false);
    assert!(s.includes("app", "orders"));
    assert!(s.includes("crm", "customers"));
    assert!(!s.includes("crm", "leads"));
    assert!(!s.includes("application", "x"));
    assert!(s.includes_db("app") && s.includes_db("crm"));
    assert!(!s.includes_db("billing"));
}

#[test]
fn wildcards_stay_within_their_part() {
    let s = selection(&["app*"], &[], false);
    assert!(s.includes("app2", "x") && s.includes("app", "x"));
    assert!(!s.includes("myapp", "x"));

    let s = selection(&["app.*"], &[], false);
    assert!(s.includes("app", "orders") && s.includes("app", "a.b"));
    assert!(!s.includes("app2", "orders"));

    let s = selection(&["*.cache"], &[], false);
    assert!(s.includes("app", "cache") && s.includes("crm", "cache"));
    assert!(!s.includes("app", "cache2"));
    assert!(s.includes_db("anything"));

    let s = selection(&["app.orders_*"], &[], false);
    assert!(s.includes("app", "orders_2024"));
    assert!(!s.includes("app", "customers"));
}

#[test]
fn exclude_wins() {
    let s = selection(&["app"], &["app.cache_*"], false);
    assert!(s.includes("app", "orders"));
    assert!(!s.includes("app", "cache_sessions"));
    assert!(s.includes_db("app"));

    // Excluding a whole database (or all its collections) drops the db.
    let s = selection(&[], &["scratch", "tmp.*"], false);
    assert!(!s.includes_db("scratch") && !s.includes_db("tmp"));
    assert!(!s.includes("scratch", "x") && !s.includes("tmp", "x"));
    assert!(s.includes_db("app"));

    // An include and an exclude naming the same collection: excluded.
    let s = selection(&["app.orders"], &["app.orders"], false);
    assert!(!s.includes("app", "orders"));
}

#[test]
fn users_and_roles_only_with_include_users() {
    let s = selection(&["app"], &[], true);
    assert!(s.includes_db("admin"));
    assert!(s.includes("admin", "system.users"));
    assert!(s.includes("admin", "system.roles"));
    assert!(!s.includes("admin", "system.version"));
    assert!(!s.includes("admin", "app_settings"));
    assert!(!s.includes_db("local") && !s.includes_db("config"));
    // Patterns cannot bring back system collections or internal dbs.
    let s = selection(&["*"], &[], true);
    assert!(!s.includes("app", "system.profile"));
    assert!(!s.includes("local", "oplog.rs"));
}

#[test]
fn pattern_parts() {
    let p = Pattern::parse("app.orders.archive").unwrap();
    assert_eq!(p.database(), "app");
    assert_eq!(p.collection(), Some("orders.archive"));
    assert_eq!(p.as_str(), "app.orders.archive");
    assert_eq!(p.to_string(), "app.orders.archive");
    assert!(p.matches("app", "orders.archive"));
    assert_eq!(Pattern::parse("app").unwrap().collection(), None);
    assert!(Pattern::parse("a b").is_err());
    assert!(Pattern::parse("app.x$y").is_err());
}

#[test]
fn jobs_carry_their_selection() {
    let config = parse_ok(&full_job(
        "include = [\"app\", \"crm.customers\"]\nexclude = [\"app.cache_*\"]\ninclude_users = true\n",
    ));
    let job = &config.jobs["prod-full"];
    assert!(job.include_users && job.selection.include_users);
    assert!(job.selection.includes("app", "orders"));
    assert!(!job.selection.includes("app", "cache_x"));
    assert!(job.selection.includes("crm", "customers"));
    assert!(!job.selection.includes("crm", "leads"));
    assert!(job.selection.includes("admin", "system.users"));

    let config = parse_ok(&full_job(""));
    assert_eq!(config.jobs["prod-full"].selection, Selection::all());
}

#[test]
fn from_patterns_for_the_command_line() {
    let include = vec!["app".to_string(), "crm.customers".to_string()];
    let exclude = vec!["app.cache_*".to_string()];
    let s = Selection::from_patterns(&include, &exclude).unwrap();
    assert_eq!(
        s,
        selection(&["app", "crm.customers"], &["app.cache_*"], false)
    );
    let none: [&str; 0] = [];
    assert_eq!(
        Selection::from_patterns(&none, &none).unwrap(),
        Selection::all()
    );
    assert_eq!(
        Selection::from_patterns(&["app", "app."], &[]).unwrap_err(),
        "\"app.\": the collection part (after the \".\") is empty: write \"app\" for the whole database or \"app.*\""
    );
}
