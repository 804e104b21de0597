-- nginx alone: one fixed path on the side port, answered by
-- `return 301` in nginx itself.
wrk.method = "GET"
wrk.path = "/aB3dE5g"
