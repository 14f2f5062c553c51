from tests.faults import chaos


def pytest_terminal_summary(terminalreporter):
    if chaos.OUTCOMES:
        terminalreporter.section("fault injection")
        terminalreporter.write_line(chaos.HEADER)
        for outcome in chaos.OUTCOMES:
            terminalreporter.write_line(outcome.row())
