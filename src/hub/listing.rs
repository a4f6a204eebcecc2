//! The repository listing: which commit a revision is and which files it has, with the
//! hub's refusals turned into errors a user can act on. Part of `hub::session`.

use reqwest::Method;

use super::http::{Follow, Hub, SendError};
use super::names::{is_full_commit, shown};
use super::session::Session;
use super::HubError;

/// A repository listing larger than this is not one.
const MAX_LISTING_BYTES: usize = 16 << 20;

/// Why the repository listing failed.
pub(super) enum InfoFailure {
    /// No answer, or a server error: the cache may stand in.
    Unreachable(String),
    Fatal(HubError),
}

#[derive(serde::Deserialize)]
pub(super) struct RepoInfo {
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
pub(super) struct Sibling {
    pub rfilename: String,
}

impl Session<'_> {
    /// The repository's commit for the revision and its file list.
    pub(super) fn info(&self, hub: &Hub) -> Result<RepoInfo, InfoFailure> {
        let rt = super::session::runtime().map_err(InfoFailure::Fatal)?;
        let url = hub.url(
            ["api", "models"]
                .into_iter()
                .chain(self.repo.split('/'))
                .chain(["revision", self.revision]),
        );
        let timeout = self.opts.request_timeout;
        let (status, code, body) = rt.block_on(async {
            let mut response = hub
                .send(Method::GET, url, None, Follow::All, Some(timeout))
                .await
                .map_err(|e| match e {
                    SendError::Transport(why) => InfoFailure::Unreachable(why),
                    SendError::Protocol(why) => InfoFailure::Fatal(HubError::Other(why)),
                })?;
            let status = response.status().as_u16();
            let code = response
                .headers()
                .get("x-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            while let Some(piece) = response
                .chunk()
                .await
                .map_err(|e| InfoFailure::Unreachable(super::http::root_cause(&e)))?
            {
                if body.len() + piece.len() > MAX_LISTING_BYTES {
                    return Err(InfoFailure::Fatal(HubError::Other(format!(
                        "{} sent a repository listing of more than {MAX_LISTING_BYTES} bytes \
                         for `{}`; refusing it",
                        self.opts.endpoint, self.repo
                    ))));
                }
                body.extend_from_slice(&piece);
            }
            Ok((status, code, body))
        })?;
        if status >= 500 {
            return Err(InfoFailure::Unreachable(format!(
                "server error HTTP {status}"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(InfoFailure::Fatal(self.http_error(
                status,
                code.as_deref(),
                None,
            )));
        }
        let info: RepoInfo = serde_json::from_slice(&body).map_err(|e| {
            InfoFailure::Fatal(HubError::Other(format!(
                "{} did not answer like a Hugging Face hub for `{}`: {e}",
                self.opts.endpoint, self.repo
            )))
        })?;
        if !is_full_commit(&info.sha) {
            return Err(InfoFailure::Fatal(HubError::Other(format!(
                "{} gave {} as the commit of `{}`, which is not a commit hash (40 hex digits)",
                self.opts.endpoint,
                shown(&info.sha),
                self.repo
            ))));
        }
        Ok(info)
    }

    pub(super) fn http_error(
        &self,
        status: u16,
        code: Option<&str>,
        file: Option<&str>,
    ) -> HubError {
        let has_token = self.opts.token.is_some();
        match (status, code, file) {
            (_, Some("GatedRepo"), _) | (403, _, _) => HubError::Gated {
                repo: self.repo.into(),
                endpoint: self.opts.endpoint.clone(),
                has_token,
            },
            (_, Some("RevisionNotFound"), _) => HubError::RevisionNotFound {
                repo: self.repo.into(),
                revision: self.revision.into(),
            },
            (404, Some("EntryNotFound"), Some(f)) | (404, None, Some(f)) => {
                self.missing_in_repo(f.to_string())
            }
            (401 | 404, _, _) => HubError::RepoNotFound {
                repo: self.repo.into(),
                endpoint: self.opts.endpoint.clone(),
                has_token,
            },
            _ => HubError::Other(format!(
                "{} answered HTTP {status} for `{}`{}",
                self.opts.endpoint,
                self.repo,
                file.map(|f| format!(" file {f}")).unwrap_or_default()
            )),
        }
    }
}
