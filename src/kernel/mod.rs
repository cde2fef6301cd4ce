//! The kernel model: a [`program::Program`] (memory + debug info + KASLR)
//! and what lives in it: tasks, lists, CPUs.

pub mod info;
pub mod kallsyms;
pub mod program;
pub mod switch;
pub mod task;

pub use program::{OpenOptions, Program};
pub use task::{for_each_task, for_each_task_brief, list_for_each, Task, TaskList, Warning};
