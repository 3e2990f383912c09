SELECT id FROM mode_switch_jobs WHERE state = 'RUNNING'
