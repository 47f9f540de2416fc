"""Grading one submission: intake (what the student's notebook holds), the student process (the judge's
end of the sandboxed one), the judge (the source's tests, trusted), student objects (proxy.py), the
time limits, which tests a CPU or GPU part judges (parts.py) and the results (results.py); grade.py
puts them together."""
