//! `gscrape describe`.

use crate::support::Workdir;

#[test]
fn lists_the_methods_of_an_api() {
    let wd = Workdir::new();
    let run = wd.run(&["describe", "drive", "v3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "POST   drive.files.create                 writes\n\
         DELETE drive.files.delete                 writes\n\
         DELETE drive.files.emptyTrash             writes\n\
         GET    drive.files.get\n\
         GET    drive.files.list        paginated\n"
    );
}

#[test]
fn describes_one_method() {
    let wd = Workdir::new();
    let run = wd.run(&["describe", "gmail", "v1", "gmail.users.messages.list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let port = wd.google.addr.port();
    let out = run.stdout;
    let expected_lines = [
        "gmail.users.messages.list".to_owned(),
        "  Lists the messages in the user's mailbox.".to_owned(),
        format!("  GET http://127.0.0.1:{port}/gmail/v1/users/{{userId}}/messages"),
        "  userId            path   string           [required]  The user's email address.".to_owned(),
        "  labelIds          query  string           [repeated]  Only return messages with labels that match all of the specified label IDs.".to_owned(),
        "  maxResults        query  integer(uint32)  Maximum number of messages to return.".to_owned(),
        "Request body: none".to_owned(),
        "Response: ListMessagesResponse".to_owned(),
        "Pagination: page token: response `nextPageToken` → query parameter `pageToken`".to_owned(),
        "Records: messages".to_owned(),
        "Default columns (17):".to_owned(),
        "  payload.headers".to_owned(),
        "  https://www.googleapis.com/auth/gmail.readonly  (least privilege: used by gscrape)".to_owned(),
    ];
    let lines: Vec<&str> = out.lines().collect();
    for expected in &expected_lines {
        assert!(
            lines.contains(&expected.as_str()),
            "missing line {expected:?} in:\n{out}"
        );
    }
}

#[test]
fn unknown_methods_and_apis_are_usage_errors() {
    let wd = Workdir::new();
    let run = wd.run(&["describe", "admin", "directory_v1", "admin.users.list"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: admin:directory_v1 has no method \"admin.users.list\"; did you mean directory.users.list?\n"
    );
    let run = wd.run(&["describe", "nosuch", "v1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: the Discovery service has no document nosuch:v1 (HTTP 404"),
        "{}",
        run.stderr
    );
}
