"""What grading leaves behind for people: the nbgrader gradebook, the files (grades.csv, results.json),
the terminal summary, each student's feedback page and the instructor's report."""
