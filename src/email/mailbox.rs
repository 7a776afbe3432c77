//! Development only: a page listing what the file mailer wrote, so links in
//! emails can be followed without an SMTP server.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

struct Mail {
    file: String,
    to: String,
    subject: String,
    text: String,
}

#[derive(Template)]
#[template(path = "dev/mailbox.html")]
struct MailboxPage {
    ctx: PageContext,
    mails: Vec<Mail>,
}

async fn show(ctx: PageContext, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let settings = &state.settings;
    let dir = settings.mail_dir.clone();
    let mails = web::block(move || -> std::io::Result<Vec<Mail>> {
        let mut files: Vec<_> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(files
            .into_iter()
            .take(50)
            .filter_map(|(_, path)| {
                let raw = std::fs::read(&path).ok()?;
                let parsed = mailparse::parse_mail(&raw).ok()?;
                let header = |name: &str| {
                    use mailparse::MailHeaderMap;
                    parsed.headers.get_first_value(name).unwrap_or_default()
                };
                let text = parsed
                    .subparts
                    .iter()
                    .find(|p| p.ctype.mimetype == "text/plain")
                    .and_then(|p| p.get_body().ok())
                    .or_else(|| parsed.get_body().ok())
                    .unwrap_or_default();
                Some(Mail {
                    file: path.file_name()?.to_string_lossy().into_owned(),
                    to: header("To"),
                    subject: header("Subject"),
                    text,
                })
            })
            .collect())
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?
    .unwrap_or_default();
    render(&MailboxPage { ctx, mails })
}

/// Registered only when `QUESTLINE_ENV=development`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dev/mailbox").route(web::get().to(show)));
}
