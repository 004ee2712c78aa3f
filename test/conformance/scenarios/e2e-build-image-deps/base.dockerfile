FROM conformance/busybox:latest

COPY hello.txt /hello.txt

CMD [ "/bin/true" ]
