//! URL previews (`/preview_url`): a page's Open Graph tags and image, as clients show them
//! under a link, from a web site the test serves on loopback; and the server's own network
//! out of reach, directly or through a redirect. Synapse, the oracle, has previews turned on
//! by the test script with an outbound list that lets it reach 127.0.0.0/8 only, as the Tandem
//! these tests start.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tandem_conformance::images::png_64x48;
use tandem_conformance::server::LoopbackServer;
use tandem_conformance::{Server, User, enc, server};

/// What a path of the site answers.
#[derive(Clone)]
enum Page {
    Html(String),
    Png(Vec<u8>),
    Redirect(String),
}

/// A plain HTTP site on `host` and the paths it was asked for.
struct Site {
    base: String,
    asked: Arc<Mutex<Vec<String>>>,
}

fn site(host: &str, pages: Vec<(&'static str, Page)>) -> Site {
    let listener = TcpListener::bind((host, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let base = if host.contains(':') { format!("http://[{host}]:{port}") } else { format!("http://{host}:{port}") };
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header.trim().is_empty() {
                    break;
                }
            }
            log.lock().expect("log").push(path.clone());
            let page = pages.iter().find(|(p, _)| *p == path).map(|(_, page)| page.clone());
            let (status, extra, body) = match page {
                Some(Page::Html(html)) => {
                    ("200 OK", "Content-Type: text/html; charset=utf-8\r\n".to_owned(), html.into_bytes())
                }
                Some(Page::Png(png)) => ("200 OK", "Content-Type: image/png\r\n".to_owned(), png),
                Some(Page::Redirect(to)) => ("302 Found", format!("Location: {to}\r\n"), Vec::new()),
                None => ("404 Not Found", String::new(), Vec::new()),
            };
            let head =
                format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    Site { base, asked }
}

fn preview(s: &Server, user: &User, url: &str) -> tandem_conformance::Response {
    let path = format!("/_matrix/client/v1/media/preview_url?url={}", enc(url));
    s.raw("GET", &path, &[("Authorization", &format!("Bearer {}", user.token))], None)
}

const NEWS: &str = r#"<!doctype html><html><head><title>Not this title</title>
<meta property="og:title" content="Ministers meet in Strasbourg">
<meta property="og:description" content="The two ministries agree on a shared chat service.">
<meta property="og:image" content="/images/cat.png"></head><body><p>Text</p></body></html>"#;

/// A page's title, description and image (made a media of this server) are what a client
/// shows under the link; a short link redirecting to it shows the same; a page without Open
/// Graph tags shows its `<title>`.
#[test]
fn a_page_is_previewed_with_its_open_graph_tags_and_image() {
    let s = LoopbackServer::start();
    let u = s.register("previewer");
    let png = png_64x48();
    let web = site(
        "127.0.0.1",
        vec![
            ("/news/item", Page::Html(NEWS.to_owned())),
            ("/images/cat.png", Page::Png(png.clone())),
            ("/short", Page::Redirect("/news/item".to_owned())),
            ("/plain", Page::Html("<html><head><title>Just a title</title></head><body>x</body></html>".to_owned())),
        ],
    );
    let og = preview(&s, &u, &format!("{}/news/item", web.base)).expect(200);
    assert_eq!(og["og:title"], "Ministers meet in Strasbourg", "{og}");
    assert_eq!(og["og:description"], "The two ministries agree on a shared chat service.", "{og}");
    let image = og["og:image"].as_str().unwrap_or_default();
    let mxc = image.strip_prefix("mxc://").unwrap_or_else(|| panic!("og:image is not an mxc URI: {og}"));
    let got = s.raw(
        "GET",
        &format!("/_matrix/client/v1/media/download/{mxc}"),
        &[("Authorization", &format!("Bearer {}", u.token))],
        None,
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.raw, png);
    assert_eq!(og["matrix:image:size"], Value::from(png.len()), "{og}");

    let og = preview(&s, &u, &format!("{}/short", web.base)).expect(200);
    assert_eq!(og["og:title"], "Ministers meet in Strasbourg", "{og}");
    let og = preview(&s, &u, &format!("{}/plain", web.base)).expect(200);
    assert_eq!(og["og:title"], "Just a title", "{og}");
    let og = preview(&s, &u, &format!("{}/images/cat.png", web.base)).expect(200);
    assert!(og["og:image"].as_str().is_some_and(|i| i.starts_with("mxc://")), "{og}");
}

/// A user cannot make the server read its own network: an address of the outbound blocklist
/// is refused, also when a page outside it redirects there, and the address is never
/// contacted. A URL that is not http(s), or none, is refused too.
#[test]
fn previews_never_reach_the_servers_own_network() {
    let s = LoopbackServer::start();
    let u = s.register("previewer");
    let internal = site("::1", vec![("/secret", Page::Html("<title>internal</title>".to_owned()))]);
    let outside = site("127.0.0.1", vec![("/innocent", Page::Redirect(format!("{}/secret", internal.base)))]);
    for url in [format!("{}/secret", internal.base), format!("{}/innocent", outside.base)] {
        let r = preview(&s, &u, &url);
        assert_ne!(r.status, 200, "{url}: {}", r.body);
        assert!(r.body.get("og:title").is_none(), "{url}: {}", r.body);
    }
    assert!(internal.asked.lock().expect("log").is_empty(), "the internal address was contacted");
    assert_eq!(outside.asked.lock().expect("log").as_slice(), ["/innocent"]);

    let r = preview(&s, &u, "file:///etc/passwd");
    assert!((400..600).contains(&r.status) && !r.raw.windows(5).any(|w| w == b"root:"), "{}", r.body);
    let r = server().raw(
        "GET",
        "/_matrix/client/v1/media/preview_url",
        &[("Authorization", &format!("Bearer {}", server().register("p").token))],
        None,
    );
    r.expect_err(400, "M_MISSING_PARAM");
}
