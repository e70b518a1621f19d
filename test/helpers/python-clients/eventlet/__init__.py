# Put first on the Python clients' PYTHONPATH by test/helpers/openstack.ts runClient(): makes
# `import eventlet` fail, as on a machine where eventlet is not installed. python3-manilaclient does
# not depend on eventlet; its httpclient only tries `from eventlet import sleep` and falls back to
# time.sleep (used between retries; nothing it sends changes). eventlet is on the CI machine only
# because tempest's dependencies (oslo.concurrency) pull it in, and importing it (greendns, dnspython,
# httpx) is about a third of the CPU of every `openstack share …` and `manila …` command.
raise ImportError("eventlet is hidden from the clients under test (test/helpers/python-clients)")
