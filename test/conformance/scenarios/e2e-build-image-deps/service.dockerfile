FROM e2e-build-image-deps-base

CMD [ "cat", "/hello.txt" ]
