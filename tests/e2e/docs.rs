//! The docs stay true: every fenced example in README.md, docs/*.md and bench/README.md is run.
//!
//! - A `toml` block that is a whole query file (it has `api =` and `method =`) is written into a
//!   work directory and must pass `gscrape validate` against the fake Google (a block of several
//!   files, each under a `# queries/NAME.toml` comment, is written as those files). A fragment
//!   (a `[sheet]`, a `[paginate]`, …) is put under a plain Drive query and validated so. A
//!   `gscrape.toml` (a `[run]`, `[endpoints]` or `[quota]` table) is the project's config of a
//!   `gscrape validate`.
//! - Every `gscrape …` command line in a shell, console, cron, systemd or YAML block is given to
//!   the binary: `describe` and `new` of an API the fake serves run for real; any other command
//!   is parsed with `--help` after its arguments, so that a flag, subcommand or value the CLI
//!   does not take is a usage error here.
//! - Every relative link points at a file that exists, and at a heading of it.
//!
//! An example that cannot run against the fake is marked by an HTML comment on the line before
//! its fence, `<!-- not run: why -->`; they are counted, and must stay few.

use crate::support::Workdir;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The APIs whose Discovery documents the fake serves (tests/fixtures/discovery).
const SERVED: &[&str] = &[
    "admin",
    "analyticsdata",
    "bigquery",
    "calendar",
    "customsearch",
    "discovery",
    "drive",
    "gmail",
    "searchconsole",
    "sheets",
    "youtubeAnalytics",
];

/// The query a fragment is put under.
const BASE_QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

/// At most this many examples may be marked `<!-- not run: … -->`.
const MAX_SKIPPED: usize = 3;

struct Block {
    /// `docs/queries.md:97`, for messages.
    at: String,
    lang: String,
    text: String,
    /// The reason of a `<!-- not run: … -->` mark.
    skip: Option<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("bench/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The fenced blocks of one Markdown file (an indented fence's indent is taken off its lines).
fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    let mut previous = "";
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let skip = previous
                .trim()
                .strip_prefix("<!-- not run:")
                .and_then(|r| r.strip_suffix("-->"))
                .map(|r| r.trim().to_string());
            let mut body = String::new();
            for (_, line) in lines.by_ref() {
                if line.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(line.get(indent..).unwrap_or(line.trim_start()));
                body.push('\n');
            }
            found.push(Block {
                at: format!("{}:{}", relative(path), index + 1),
                lang: lang.trim().to_string(),
                text: body,
                skip,
            });
            previous = "";
        } else if !line.trim().is_empty() {
            previous = line;
        }
    }
    found
}

fn all_blocks() -> Vec<Block> {
    doc_files().iter().flat_map(|p| blocks(p)).collect()
}

/// A piece of a shell line: a word, or what separates commands or redirects.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Separator,
    Redirect,
}

/// Splits a shell line as sh would for the purpose here: quotes, backslashes, comments,
/// `&&`, `||`, `|`, `;` and redirections.
fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    tokens.push(Token::Word(w));
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                w.push(next);
                            }
                        }
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            '&' | '|' | ';' => {
                if let Some(w) = word.take() {
                    tokens.push(Token::Word(w));
                }
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                tokens.push(Token::Separator);
            }
            '>' | '<' => {
                // `2>` is a redirect of its own, not the word `2`.
                if word
                    .as_deref()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                {
                    word = None;
                }
                if let Some(w) = word.take() {
                    tokens.push(Token::Word(w));
                }
                if chars.peek() == Some(&'>') {
                    chars.next();
                }
                tokens.push(Token::Redirect);
                // `2>&1`: the target is a descriptor, `&1`, not a separator.
                if chars.peek() == Some(&'&') {
                    chars.next();
                    let mut target = String::from("&");
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        target.push(d);
                    }
                    tokens.push(Token::Word(target));
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        tokens.push(Token::Word(w));
    }
    tokens
}

/// The arguments of each `gscrape` command on a shell line (environment assignments before it
/// and redirections taken off).
fn gscrape_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut segment: Vec<String> = Vec::new();
    let mut tokens = tokenize(line).into_iter();
    let mut finish = |segment: &mut Vec<String>| {
        let words: Vec<String> = std::mem::take(segment)
            .into_iter()
            .skip_while(|w| is_assignment(w))
            .collect();
        if words
            .first()
            .is_some_and(|w| w == "gscrape" || w.ends_with("/gscrape"))
        {
            commands.push(words[1..].to_vec());
        } else if words.first().is_some_and(|w| w == "gcloud") {
            // `gcloud run jobs create … --args run,/queries,…`: the job's gscrape arguments.
            if let Some(at) = words.iter().position(|w| w == "--args") {
                commands.push(words[at + 1].split(',').map(String::from).collect());
            }
        } else if words.len() > 1
            && ["docker", "podman"].contains(&words[0].as_str())
            && words[1] == "run"
        {
            // `docker run [OPTIONS] gscrape ARGS…`: the image's entrypoint is gscrape.
            if let Some(image) = words.iter().position(|w| w == "gscrape") {
                commands.push(words[image + 1..].to_vec());
            }
        }
    };
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w) => segment.push(w),
            Token::Separator => finish(&mut segment),
            Token::Redirect => {
                tokens.next();
            }
        }
    }
    finish(&mut segment);
    commands
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The `gscrape` command lines of a block: every line of a shell or cron block (continuation
/// lines joined), `$ ` lines of a console or text block, `ExecStart=` of a systemd unit, and
/// `run:` steps and container `args:` of YAML.
fn commands_of(block: &Block) -> Vec<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in block.text.lines() {
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    let mut commands = Vec::new();
    match block.lang.as_str() {
        "sh" | "bash" | "shell" | "cron" => {
            for line in &lines {
                commands.extend(gscrape_commands(line));
            }
        }
        "console" | "text" => {
            for line in &lines {
                if let Some(command) = line.strip_prefix("$ ") {
                    commands.extend(gscrape_commands(command));
                }
            }
        }
        "ini" => {
            for line in &lines {
                if let Some(command) = line.trim().strip_prefix("ExecStart=") {
                    commands.extend(gscrape_commands(command));
                }
            }
        }
        "yaml" => {
            let text = block.text.as_str();
            for line in &lines {
                let line = line.trim().trim_start_matches("- ");
                if let Some(command) = line.strip_prefix("run:") {
                    commands.extend(gscrape_commands(command));
                }
            }
            // Container args, a JSON-like list that may go on over lines.
            let mut rest = text;
            while let Some(at) = rest.find("args: [") {
                let list = &rest[at + "args: ".len()..];
                let end = list.find(']').expect("an args list ends") + 1;
                let args: Vec<String> = serde_json::from_str(&list[..end])
                    .unwrap_or_else(|e| panic!("{}: args {}: {e}", block.at, &list[..end]));
                commands.push(args);
                rest = &list[end..];
            }
        }
        _ => {}
    }
    commands
}

/// Runs one documented command line: `describe` and `new` of a served API for real, any other
/// parsed by the binary (`--help` after its arguments). Err says what went wrong.
fn check_command(wd: &Workdir, args: &[String]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let runs_for_real = matches!(words.first(), Some(&"describe") | Some(&"new"))
        && words.get(1).is_some_and(|api| SERVED.contains(api));
    let mut argv = words.clone();
    if !runs_for_real
        && !words
            .iter()
            .any(|w| ["--help", "-h", "--version"].contains(w))
    {
        argv.push("--help");
    }
    let run = wd.run(&argv);
    if run.code != 0 || run.stderr.contains("error:") || run.stdout.is_empty() {
        return Err(format!(
            "`gscrape {}` (run as `gscrape {}`): exit {}\n{}{}",
            words.join(" "),
            argv.join(" "),
            run.code,
            run.stdout,
            run.stderr
        ));
    }
    Ok(())
}

/// Whether a TOML block is a project's `gscrape.toml`.
fn is_config(text: &str) -> bool {
    !is_query(text)
        && text.lines().any(|l| {
            let l = l.trim();
            l == "[run]" || l == "[endpoints]" || l.starts_with("[quota")
        })
}

fn is_query(text: &str) -> bool {
    let top = |key: &str| {
        text.lines()
            .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
    };
    top("api") && top("method")
}

/// The query files of a block: one, or several each under its `# queries/NAME.toml` comment.
fn query_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let named = line
            .strip_prefix("# queries/")
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|name| name.ends_with(".toml"));
        match (named, files.last_mut()) {
            (Some(name), _) => files.push((format!("queries/{name}"), String::new())),
            (None, None) => files.push(("queries/example.toml".into(), String::new())),
            (None, Some(_)) => {}
        }
        let last = files.last_mut().unwrap();
        last.1.push_str(line);
        last.1.push('\n');
    }
    files
}

/// Validates one TOML block as what it is. Err says what went wrong.
fn check_toml(block: &Block) -> Result<&'static str, String> {
    let wd = Workdir::new();
    if !is_query(&block.text) {
        toml::from_str::<toml::Table>(&block.text).map_err(|e| format!("not TOML: {e}"))?;
    }
    let kind = if is_config(&block.text) {
        wd.write("gscrape.toml", &block.text);
        wd.write("queries/base.toml", BASE_QUERY);
        "config"
    } else if is_query(&block.text) {
        for (path, text) in query_files(&block.text) {
            toml::from_str::<toml::Table>(&text).map_err(|e| format!("{path}: not TOML: {e}"))?;
            wd.write(&path, &text);
        }
        "query"
    } else {
        wd.write(
            "queries/example.toml",
            &format!("{BASE_QUERY}{}", block.text),
        );
        "fragment"
    };
    let mut args = vec!["validate"];
    if block.text.contains("window.") {
        args.extend(["--from", "2024-03-01", "--to", "2024-03-01"]);
    }
    let run = wd.run(&args);
    if run.code != 0 || !run.stdout.lines().all(|l| l.starts_with("ok")) {
        return Err(format!(
            "gscrape {} of this {kind}: exit {}\n{}{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        ));
    }
    Ok(kind)
}

#[test]
fn every_query_and_config_in_the_docs_validates() {
    let blocks: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.lang == "toml")
        .collect();
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    let mut skipped = Vec::new();
    for block in &blocks {
        if let Some(why) = &block.skip {
            skipped.push(format!("{} ({why})", block.at));
            continue;
        }
        match check_toml(block) {
            Ok(kind) => *counts.entry(kind).or_insert(0) += 1,
            Err(e) => failures.push(format!("{}:\n{}\n{e}", block.at, block.text)),
        }
    }
    eprintln!("docs: TOML examples validated {counts:?}; not run: {skipped:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        counts.get("query").copied().unwrap_or(0) >= 10,
        "{counts:?}"
    );
    assert!(
        counts.get("config").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
}

#[test]
fn every_gscrape_command_in_the_docs_is_one_the_binary_takes() {
    let wd = Workdir::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut skipped = Vec::new();
    for block in all_blocks() {
        let commands = commands_of(&block);
        if commands.is_empty() {
            continue;
        }
        if let Some(why) = &block.skip {
            skipped.push(format!("{} ({why})", block.at));
            continue;
        }
        for args in commands {
            checked += 1;
            if let Err(e) = check_command(&wd, &args) {
                failures.push(format!("{}: {e}", block.at));
            }
        }
    }
    eprintln!("docs: {checked} gscrape command lines checked; not run: {skipped:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 30, "only {checked} command lines found");
}

#[test]
fn few_examples_are_marked_not_run_and_each_says_why() {
    let skipped: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.skip.is_some())
        .collect();
    for block in &skipped {
        assert!(
            block.skip.as_deref().is_some_and(|why| why.len() >= 10),
            "{}: say why it is not run",
            block.at
        );
    }
    assert!(
        skipped.len() <= MAX_SKIPPED,
        "{:?}",
        skipped.iter().map(|b| &b.at).collect::<Vec<_>>()
    );
}

/// The checks above catch what they are for: a flag, a subcommand or a value the binary does
/// not take, and a query with a mistake, fail.
#[test]
fn the_checks_fail_a_wrong_example() {
    let wd = Workdir::new();
    for wrong in [
        "gscrape run queries --no-such-flag",
        "gscrape run queries/ga4.toml --from 2024-03-01 --to 2024-03-31 --step fortnight",
        "gscrape exports queries",
        "gscrape describe drive v3 drive.files.lst",
        "cd /srv && GOOGLE_APPLICATION_CREDENTIALS=sa.json gscrape run --quiet --summary out.json",
    ] {
        let commands = gscrape_commands(wrong);
        assert_eq!(commands.len(), 1, "{wrong}");
        assert!(check_command(&wd, &commands[0]).is_err(), "{wrong} passed");
    }
    let right = "GSCRAPE_TODAY=2024-03-15 gscrape run queries --delimiter ';' > log.txt 2>&1";
    assert_eq!(
        gscrape_commands(right),
        [["run", "queries", "--delimiter", ";"]]
    );
    assert_eq!(check_command(&wd, &gscrape_commands(right)[0]), Ok(()));
    let wrong_query = Block {
        at: "here".into(),
        lang: "toml".into(),
        text: format!("{BASE_QUERY}[params]\npagesize = 10\n"),
        skip: None,
    };
    assert!(check_toml(&wrong_query).is_err());
    let wrong_fragment = Block {
        text: "[sheet]\nspreadsheet = \"new\"\nmode = \"overwrite\"\n".into(),
        ..wrong_query
    };
    assert!(check_toml(&wrong_fragment).is_err());
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut in_fence = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            found.insert(anchor(line));
        }
    }
    found
}

#[test]
fn every_link_in_the_docs_reaches_its_file_and_heading() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_fence = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
            }
            if in_fence {
                continue;
            }
            for (start, _) in line.match_indices("](") {
                let rest = &line[start + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !linked.exists() {
                    failures.push(format!("{}: {target}: no such file", relative(&file)));
                } else if !fragment.is_empty() && !anchors(&linked).contains(fragment) {
                    failures.push(format!("{}: {target}: no such heading", relative(&file)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "only {checked} links found");
}

/// README's first exports, done as written: its query files (each under its
/// `# queries/NAME.toml` comment) and the shipped examples it names, then each of its `run` and
/// `validate` lines that names a query file, run for real against the fake Google.
#[test]
fn the_readme_first_exports_run_as_written() {
    let wd = Workdir::new();
    for name in ["google_apis.toml", "ga4_daily_users.toml"] {
        let text = std::fs::read_to_string(root().join("queries").join(name)).unwrap();
        wd.write(&format!("queries/{name}"), &text);
    }
    let blocks = blocks(&root().join("README.md"));
    let mut written = Vec::new();
    for block in blocks.iter().filter(|b| b.lang == "toml") {
        for (path, text) in query_files(&block.text) {
            assert!(
                path != "queries/example.toml",
                "{}: name its file",
                block.at
            );
            wd.write(&path, &text);
            written.push(path);
        }
    }
    assert_eq!(written, ["queries/my_files.toml", "queries/ga4_daily.toml"]);
    let mut ran = 0;
    for block in &blocks {
        for args in commands_of(block) {
            let names_a_query = args.iter().any(|a| a.ends_with(".toml"));
            if !(names_a_query && matches!(args[0].as_str(), "run" | "validate")) {
                continue;
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = wd.run(&argv);
            assert_eq!(
                run.code,
                0,
                "{}: gscrape {}: {run:?}",
                block.at,
                argv.join(" ")
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "{ran}");
    for output in [
        "output/google_apis.csv",
        "output/my_files.xlsx",
        "output/ga4_2024-03-01.csv",
        "output/ga4_2024-03-31.csv",
        "output/ga4_daily_users_2024-03-15.csv",
        "output/summary.json",
    ] {
        assert!(wd.exists(output), "{output}: {:?}", wd.list("output"));
    }
}
