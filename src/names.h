/* The library's internal names, prefixed. Functions and variables that
 * one file of src/ defines and others use have external linkage, and a
 * static library would define them for every program it is linked into:
 * a program with a stack_alloc() of its own would not link, or worse, the
 * library would call the program's. So each such name is given the
 * asyncio__ prefix here (libuv's uv__ convention): the sources keep the
 * short names, and libasyncio.a and libasyncio.so define no global name
 * outside asyncio_ / ASYNCIO_. Every internal header includes this file
 * first. A new internal name missing here fails the symbols_exported test,
 * which lists it. */
#ifndef ASYNCIO_NAMES_H
#define ASYNCIO_NAMES_H

/* clock.c */
#define clock_now_ns asyncio__clock_now_ns
#define clock_seconds_to_ns asyncio__clock_seconds_to_ns
/* coro.c */
#define coro_create asyncio__coro_create
#define coro_destroy asyncio__coro_destroy
#define coro_init_thread asyncio__coro_init_thread
#define coro_template_init asyncio__coro_template_init
#define coro_switch asyncio__coro_switch /* where it is not inline */
/* cfuture.c */
#define cfuture_wait_free asyncio__cfuture_wait_free
#define cfuture_wait_new asyncio__cfuture_wait_new
#define cfuture_wait_park asyncio__cfuture_wait_park
#define cfuture_wraps_term asyncio__cfuture_wraps_term
/* executor.c */
#define executor_close_default asyncio__executor_close_default
#define executor_default asyncio__executor_default
/* debug.c */
#define debug_callback_ran asyncio__debug_callback_ran
#define debug_closed_use asyncio__debug_closed_use
#define debug_init asyncio__debug_init
#define debug_start asyncio__debug_start
#define fanin_waiter_task asyncio__fanin_waiter_task
#define task_waiting_through asyncio__task_waiting_through
#define taskgroup_owner asyncio__taskgroup_owner
#define debug_report_unretrieved asyncio__debug_report_unretrieved
#define debug_term asyncio__debug_term
#define debug_wrong_thread asyncio__debug_wrong_thread
#define future_origin asyncio__future_origin
#define task_info_created asyncio__task_info_created
#define task_info_ready asyncio__task_info_ready
#define task_info_step_begin asyncio__task_info_step_begin
#define task_info_step_end asyncio__task_info_step_end
/* future.c */
#define future_add_waiter asyncio__future_add_waiter
#define future_complete asyncio__future_complete
#define future_free asyncio__future_free
#define future_init asyncio__future_init
#define future_outcome asyncio__future_outcome
#define future_await_for asyncio__future_await_for
#define futures_free_all asyncio__futures_free_all
/* handle.c */
#define handles_term asyncio__handles_term
/* io.c */
#define io_dispatch asyncio__io_dispatch
#define io_run_deferred asyncio__io_run_deferred
#define io_term asyncio__io_term
#define io_wait asyncio__io_wait
#define io_wake_waiters asyncio__io_wake_waiters
#define io_watch asyncio__io_watch
/* loop.c */
#define loop_own asyncio__loop_own
#define loop_next_batch_now asyncio__loop_next_batch_now
#define loop_timer_add asyncio__loop_timer_add
#define loop_timer_cancel asyncio__loop_timer_cancel
#define loop_tls asyncio__loop_tls
/* overflow.c */
#define overflow_init asyncio__overflow_init
#define overflow_term asyncio__overflow_term
/* poller.c */
#define poller_init asyncio__poller_init
#define poller_term asyncio__poller_term
/* poller_epoll.c */
#define poller_epoll_ops asyncio__poller_epoll_ops
/* poller_kqueue.c */
#define poller_kqueue_ops asyncio__poller_kqueue_ops
/* poller_poll.c */
#define poller_poll_ops asyncio__poller_poll_ops
/* resolve.c */
#define net_resolve asyncio__net_resolve
/* signal.c */
#define signals_fired asyncio__signals_fired
#define signals_ignored asyncio__signals_ignored
#define signals_term asyncio__signals_term
/* sendfile.c */
#define net_sendfile_span asyncio__net_sendfile_span
#define net_sendfile_zero asyncio__net_sendfile_zero
/* sock.c */
#define net_begin asyncio__net_begin
#define net_prepare_fd asyncio__net_prepare_fd
#define net_sigpipe_block asyncio__net_sigpipe_block
#define net_sigpipe_unblock asyncio__net_sigpipe_unblock
#define net_sigpipe_ignored asyncio__net_sigpipe_ignored
#define net_unix_addr asyncio__net_unix_addr
#define net_wait asyncio__net_wait
/* stack.c */
#define stack_alloc asyncio__stack_alloc
#define stack_swept asyncio__stack_swept
#define stack_sweep_flush asyncio__stack_sweep_flush
#define stack_unswept asyncio__stack_unswept
#define stack_arena_destroy asyncio__stack_arena_destroy
#define stack_arena_init asyncio__stack_arena_init
#define stack_free asyncio__stack_free
#define stack_free_batch_begin asyncio__stack_free_batch_begin
#define stack_free_batch_end asyncio__stack_free_batch_end
#define stack_page_size asyncio__stack_page_size
#define san_unpoison_stack asyncio__san_unpoison_stack /* ASan builds */
/* stream.c */
#define stream_release asyncio__stream_release
#define stream_retain asyncio__stream_retain
#define stream_set_owner_slot asyncio__stream_set_owner_slot
#define sigchld_prepare asyncio__sigchld_prepare
#define sigchld_watch asyncio__sigchld_watch
#define sigchld_forget asyncio__sigchld_forget
#define sigchld_idle asyncio__sigchld_idle
/* subprocess.c */
#define subprocess_proc_exited asyncio__subprocess_proc_exited
/* threadsafe.c (woken) */
#define threads_woken asyncio__threads_woken
#define fd_above_stdio asyncio__fd_above_stdio
/* task.c */
#define task_begin_wait_on asyncio__task_begin_wait_on
#define task_check_await asyncio__task_check_await
#define task_park asyncio__task_park
#define task_park_timed asyncio__task_park_timed
#define task_rearm asyncio__task_rearm
#define task_runnable asyncio__task_runnable
#define tasks_set_counted asyncio__tasks_set_counted
#define task_scopes_check asyncio__task_scopes_check
#define task_struct_recycle asyncio__task_struct_recycle
#define task_wait_done_uncancellable asyncio__task_wait_done_uncancellable
#define task_watch_future asyncio__task_watch_future
#define task_wake_hop asyncio__task_wake_hop
#define task_yield_hop asyncio__task_yield_hop
#define task_wake_handoff asyncio__task_wake_handoff
#define tasks_cancel_all asyncio__tasks_cancel_all
#define tasks_init asyncio__tasks_init
#define tasks_term asyncio__tasks_term
#define tasks_trim_pool asyncio__tasks_trim_pool
#define task_sweep_mark asyncio__task_sweep_mark
#define task_set_sweep_mark asyncio__task_set_sweep_mark
/* sweep.c */
#define sweep_available asyncio__sweep_available
#define sweep_init asyncio__sweep_init
#define sweep_prefault asyncio__sweep_prefault
#define sweep_restore asyncio__sweep_restore
#define sweep_start asyncio__sweep_start
#define sweep_term asyncio__sweep_term
/* taskgroup.c */
#define taskgroup_child_done asyncio__taskgroup_child_done
/* threadsafe.c */
#define loop_post asyncio__loop_post
#define loop_post_node asyncio__loop_post_node
#define thread_cond_init asyncio__thread_cond_init
#define thread_cond_wait_until asyncio__thread_cond_wait_until
#define thread_multi_cpu asyncio__thread_multi_cpu
#define threads_init asyncio__threads_init
#define threads_spin asyncio__threads_spin
#define threads_take asyncio__threads_take
#define threads_term asyncio__threads_term
/* timerheap.c */
#define timerheap_free asyncio__timerheap_free
#define timerheap_push asyncio__timerheap_push
#define timerheap_remove asyncio__timerheap_remove
/* waitq.c */
#define fanin_close asyncio__fanin_close
#define fanin_make_spare asyncio__fanin_make_spare
#define fanin_open asyncio__fanin_open
#define fanin_wait asyncio__fanin_wait
#define waitq_first asyncio__waitq_first
#define waitq_hand asyncio__waitq_hand
#define waitq_holds_place asyncio__waitq_holds_place
#define waitq_park asyncio__waitq_park
#define waitq_wake asyncio__waitq_wake
#define waitq_wake_listed asyncio__waitq_wake_listed

#endif

