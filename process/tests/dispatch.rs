//! The dispatch seam: `Inline`, the default, and a dispatcher written
//! against the public trait alone, which queues jobs and tasks and runs
//! them later on the test thread. (The io layer's threaded and tokio
//! strategies are tested in net/tests/dispatch.rs.)

mod util;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Waker};

use bytes::Bytes;
use util::{Link, bytes, poll, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_process::{Context, Dispatch, Error, Inline, Job, Router, Session, Task};

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

/// `echo` (sync, logs its thread), `async` (async echo), `spawns` (sync,
/// starts work with `Context::spawn` and says whether it was taken),
/// `boom` (panics).
fn router(log: Arc<Mutex<Vec<String>>>, spawned: Arc<AtomicBool>) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", move |_: &mut Context, req: Bytes| {
            log.lock().unwrap().push(thread_name());
            Ok(req)
        })
        .unwrap();
    router
        .route_async("async", |ctx: Context, req: Bytes| async move {
            std::future::ready(()).await;
            (ctx, Ok(req))
        })
        .unwrap();
    router
        .route("spawns", move |ctx: &mut Context, _: Bytes| {
            let spawned = spawned.clone();
            let taken = ctx.spawn(async move { spawned.store(true, Ordering::SeqCst) });
            Ok(Bytes::from(match taken {
                Ok(()) => "taken".to_string(),
                Err(e) => e.to_string(),
            }))
        })
        .unwrap();
    router
        .route("boom", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            panic!("boom")
        })
        .unwrap();
    router
}

/// A link whose server runs `router` on `dispatcher` (default if `None`),
/// and what its handlers leave behind.
struct Served {
    link: Link,
    /// The threads `echo` ran on.
    log: Arc<Mutex<Vec<String>>>,
    /// Set by the work `spawns` starts.
    spawned: Arc<AtomicBool>,
}

fn serve(dispatcher: Option<Arc<dyn Dispatch>>, session: u64) -> Served {
    let (log, spawned) = (Arc::default(), Arc::default());
    let link = Link::with(
        walle(),
        Router::new(RawCodec),
        router(Arc::clone(&log), Arc::clone(&spawned)),
        |b| b,
        |b| {
            let b = b.session(Session::new(session));
            match dispatcher {
                Some(d) => b.dispatcher(d),
                None => b,
            }
        },
    );
    Served { link, log, spawned }
}

fn remote_code(result: Result<Bytes, Error>) -> (Code, String) {
    match result {
        Err(Error::Remote { code, desc }) => (code, desc),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[test]
fn inline_is_the_default_and_runs_on_the_caller() {
    for dispatcher in [None, Some(Arc::new(Inline) as Arc<dyn Dispatch>)] {
        let Served { mut link, log, .. } = serve(dispatcher, 1);
        let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
        link.pump();
        assert_eq!(ready(&mut call).unwrap(), bytes("x"));
        assert_eq!(*log.lock().unwrap(), [thread_name()]);
    }
}

/// Inline has no executor: an async handler is refused with code 4 (and
/// counted), and so is work a handler spawns; nothing is left waiting.
#[test]
fn inline_refuses_async_work_with_not_supported() {
    let Served { mut link, .. } = serve(None, 1);
    let mut call = link.client.call::<Bytes, Bytes>("async", &bytes("x"));
    let mut spawns = link.client.call::<Bytes, Bytes>("spawns", &bytes("x"));
    link.pump();
    let (code, desc) = remote_code(ready(&mut call));
    assert_eq!(code, Code::NOT_SUPPORTED);
    assert!(desc.contains("runtime"), "{desc}");
    let said = ready(&mut spawns).unwrap();
    assert!(said.starts_with(b"no runtime"), "{said:?}");
    assert_eq!(link.server.stats().rejected, 1);
    assert_eq!(link.server.stats().pending_calls, 0);
}

/// A dispatcher written against the public trait: jobs wait in a bounded
/// queue and tasks in a list until the test thread runs them.
#[derive(Default)]
struct Later {
    room: usize,
    jobs: Mutex<Vec<Job>>,
    tasks: Mutex<Vec<Task>>,
    /// Session ids of the jobs submitted, as a keyed strategy reads them.
    keys: Mutex<Vec<u64>>,
    refuse_tasks: bool,
}

impl Dispatch for Later {
    fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
        self.keys.lock().unwrap().push(job.session_id());
        assert_eq!(job.context().session().id(), job.session_id());
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.len() >= self.room {
            return Err((job, Error::Overloaded("later: queue full")));
        }
        jobs.push(job);
        Ok(())
    }

    fn spawn(&self, task: Task) -> Result<(), (Task, Error)> {
        if self.refuse_tasks {
            return Err((task, Error::Overloaded("later: no room for tasks")));
        }
        self.tasks.lock().unwrap().push(task);
        Ok(())
    }
}

impl Later {
    fn with_room(room: usize) -> Arc<Self> {
        Arc::new(Later {
            room,
            ..Later::default()
        })
    }

    /// Runs the queued jobs here; how many ran.
    fn run_jobs(&self) -> usize {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap());
        let ran = jobs.len();
        jobs.into_iter().for_each(Job::run);
        ran
    }

    /// Polls every task once here; how many finished.
    fn poll_tasks(&self) -> usize {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let before = tasks.len();
        let mut cx = TaskContext::from_waker(Waker::noop());
        tasks.retain_mut(|task| std::pin::Pin::new(task).poll(&mut cx).is_pending());
        let done = before - tasks.len();
        self.tasks.lock().unwrap().extend(tasks);
        done
    }
}

#[test]
fn a_user_dispatcher_runs_jobs_and_tasks_where_it_chooses() {
    let later = Later::with_room(16);
    let Served { mut link, log, .. } = serve(Some(later.clone()), 7);
    let mut echo = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    let mut async_echo = link.client.call::<Bytes, Bytes>("async", &bytes("y"));
    link.pump();
    // Queued, not run: nobody answered yet.
    assert!(poll(&mut echo).is_pending() && poll(&mut async_echo).is_pending());
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(*later.keys.lock().unwrap(), [7, 7]);

    assert_eq!(later.run_jobs(), 2);
    link.pump();
    assert_eq!(ready(&mut echo).unwrap(), bytes("x"));
    assert_eq!(*log.lock().unwrap(), [thread_name()]);
    // The async job handed its handler to `spawn`: it runs when polled.
    assert!(poll(&mut async_echo).is_pending());
    assert_eq!(later.poll_tasks(), 1);
    link.pump();
    assert_eq!(ready(&mut async_echo).unwrap(), bytes("y"));
    assert_eq!(link.server.stats().rejected, 0);
}

/// A dispatcher that says it runs jobs inline is taken at its word: the
/// process runs requests on the calling thread and never calls `submit`
/// (here it would queue them), while async work still goes to `spawn`.
#[test]
fn a_dispatcher_that_runs_inline_is_not_asked_to_submit() {
    #[derive(Default)]
    struct SaysInline(Later);
    impl Dispatch for SaysInline {
        fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
            self.0.submit(job)
        }
        fn spawn(&self, task: Task) -> Result<(), (Task, Error)> {
            self.0.spawn(task)
        }
        fn runs_inline(&self) -> bool {
            true
        }
    }
    let says = Arc::new(SaysInline(Later {
        room: 16,
        ..Later::default()
    }));
    let Served { mut link, log, .. } = serve(Some(says.clone()), 3);
    let mut echo = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    let mut async_echo = link.client.call::<Bytes, Bytes>("async", &bytes("y"));
    link.pump();
    assert_eq!(ready(&mut echo).unwrap(), bytes("x"));
    assert_eq!(*log.lock().unwrap(), [thread_name()]);
    assert!(says.0.keys.lock().unwrap().is_empty(), "submit was called");
    assert!(poll(&mut async_echo).is_pending());
    assert_eq!(says.0.poll_tasks(), 1);
    link.pump();
    assert_eq!(ready(&mut async_echo).unwrap(), bytes("y"));
}

/// Work a handler spawns goes to the same executor.
#[test]
fn context_spawn_goes_through_the_dispatcher() {
    let later = Later::with_room(16);
    let Served {
        mut link, spawned, ..
    } = serve(Some(later.clone()), 1);
    let mut call = link.client.call::<Bytes, Bytes>("spawns", &bytes("x"));
    link.pump();
    later.run_jobs();
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("taken"));
    assert!(!spawned.load(Ordering::SeqCst), "runs only when polled");
    assert_eq!(later.poll_tasks(), 1);
    assert!(spawned.load(Ordering::SeqCst));
}

/// A refused job is answered with the refusal's code (10) and counted; a
/// job dropped without running is answered with code 7.
#[test]
fn refused_and_dropped_jobs_are_answered() {
    let later = Later::with_room(1);
    let Served { mut link, .. } = serve(Some(later.clone()), 1);
    let mut first = link.client.call::<Bytes, Bytes>("echo", &bytes("1"));
    let mut second = link.client.call::<Bytes, Bytes>("echo", &bytes("2"));
    link.pump();
    let (code, desc) = remote_code(ready(&mut second));
    assert_eq!(code, Code::OVERLOADED);
    assert!(desc.contains("later: queue full"), "{desc}");
    assert_eq!(link.server.stats().rejected, 1);
    assert!(poll(&mut first).is_pending());

    drop(std::mem::take(&mut *later.jobs.lock().unwrap()));
    link.pump();
    assert_eq!(remote_code(ready(&mut first)).0, Code::UNEXPECTED);
}

/// A refused async handler gives its request back: it is answered with
/// the refusal (code 10), not dropped unanswered.
#[test]
fn a_refused_task_is_answered_with_the_refusal() {
    let later = Arc::new(Later {
        room: 16,
        refuse_tasks: true,
        ..Later::default()
    });
    let Served { mut link, .. } = serve(Some(later.clone()), 1);
    let mut call = link.client.call::<Bytes, Bytes>("async", &bytes("x"));
    link.pump();
    later.run_jobs();
    link.pump();
    let (code, desc) = remote_code(ready(&mut call));
    assert_eq!(code, Code::OVERLOADED);
    assert!(desc.contains("no room for tasks"), "{desc}");
    assert_eq!(link.server.stats().rejected, 1);
    assert!(later.tasks.lock().unwrap().is_empty());
}

/// A handler's panic is contained wherever the dispatcher runs its job:
/// the request fails with code 1 and the thread goes on.
#[test]
fn a_panicking_handler_under_a_user_dispatcher_fails_its_request() {
    let later = Later::with_room(16);
    let Served { mut link, .. } = serve(Some(later.clone()), 1);
    let mut call = link.client.call::<Bytes, Bytes>("boom", &bytes("x"));
    link.pump();
    later.run_jobs();
    link.pump();
    assert_eq!(remote_code(ready(&mut call)).0, Code::UNKNOWN);
}
