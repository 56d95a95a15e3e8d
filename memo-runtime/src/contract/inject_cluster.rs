//! The injectables that act on the cluster: `patch`, `recorder` and `client`, one trait each, as
//! in `inject`.

use crate::api::patch::Patch;
use crate::api::recorder::Recorder;
use crate::contract::context::Env;
use crate::contract::outcome::InjectError;

/// The types a `patch` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `patch` parameter",
    label = "expected `&mut Patch`",
    note = "`patch` is a merge patch of the handler's object, applied once its event's handlers have run"
)]
pub trait PatchArg<'a>: Sized {
    /// Takes the handler's own patch for this call.
    fn inject(patch: Option<&'a mut Patch>) -> Result<Self, InjectError>;
}

impl<'a> PatchArg<'a> for &'a mut Patch {
    #[inline]
    fn inject(patch: Option<&'a mut Patch>) -> Result<Self, InjectError> {
        patch.ok_or(InjectError("patch"))
    }
}

/// The types a `recorder` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `recorder` parameter",
    label = "expected `&Recorder`"
)]
pub trait RecorderArg<'a>: Sized {
    /// Takes the recorder made for this call.
    fn inject(recorder: Option<&'a Recorder>) -> Result<Self, InjectError>;
}

impl<'a> RecorderArg<'a> for &'a Recorder {
    #[inline]
    fn inject(recorder: Option<&'a Recorder>) -> Result<Self, InjectError> {
        recorder.ok_or(InjectError("recorder"))
    }
}

/// The types a `client` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `client` parameter",
    label = "expected `&kube::Client` (`memo_runtime::kube::Client`, feature `kube`)"
)]
pub trait ClientArg<'a>: Sized {
    /// Takes the operator's Kubernetes client.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

#[cfg(feature = "kube")]
impl<'a> ClientArg<'a> for &'a kube::Client {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        env.cluster.map(|cluster| cluster.client()).ok_or(InjectError("client"))
    }
}
