"""Grading a batch: many submissions, one coordinator, several workers.

coordinator.py is `course grade` (what to grade, the progress bar, writing results as they come);
jobs.py the job table that makes a batch resumable; pool.py the local worker pool and what one worker
does (GradingSlot); judge_server.py the forkserver whose children are those workers (torch imported
once); celery_app.py the same workers behind Redis queues.
"""
