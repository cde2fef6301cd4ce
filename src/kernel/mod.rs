//! The kernel model: a [`program::Program`] (memory + debug info + KASLR)
//! and what lives in it: tasks, lists, CPUs, the log, modules.

pub mod cpus;
pub mod hung;
pub mod info;
pub mod kallsyms;
pub mod modules;
pub mod printk;
pub mod program;
pub mod stack;
pub mod task;

pub use program::{OpenOptions, Program};
pub use task::{
    list_for_each, prepare, task_list, task_list_brief, task_list_names, Task, TaskList, Warning,
};
