/* The pod sandbox's one process: hold the pod's namespaces open and reap orphans until stopped.
 * Built static into the locally made pause image (test/node/images), since no registry is
 * reachable for the usual one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("pause (vhosttrace test node)");
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not pid 1, orphans are not mine to reap\n");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop;
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return 1;
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL))
		return 2;
	for (;;)
		pause();
}
